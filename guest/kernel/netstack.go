package kernel

import (
	"encoding/binary"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/loopback"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/pithvm/pith/guest/linux"
)

// The app's network: gVisor's netstack, inside tier 1, built at the app's first socket
// (a program that makes none pays nothing), with a loopback interface carrying
// 127.0.0.1/8 and ::1 and, unless the guest runs with --net none, a NIC (nic.go) at
// 10.0.2.15/24 whose gateway, 10.0.2.2, carries the rest of IPv4 out through the host.

const loopbackNIC tcpip.NICID = 1

var network struct {
	once  sync.Once
	stack *stack.Stack
	nic   bool // attached: peers outside the guest
}

// lingerMax bounds how long an ending guest waits for its peers outside to take what it
// sent.
const lingerMax = time.Second

// flushNetwork closes every TCP connection and waits, at most lingerMax, until its peers
// outside the guest have acknowledged the data and the FIN: on Linux a process's last
// answer goes out after it has ended, but here the guest ends with the process, and what
// netstack still held would be lost.
func flushNetwork() {
	if network.stack == nil || !network.nic {
		return
	}
	s := network.stack
	for _, ep := range s.RegisteredEndpoints() {
		if e, ok := ep.(tcpip.Endpoint); ok {
			e.Close()
		}
	}
	for deadline := time.Now().Add(lingerMax); time.Now().Before(deadline) && unacknowledged(s); {
		time.Sleep(time.Millisecond)
	}
}

// unacknowledged reports whether a TCP connection still has data or a FIN its peer has
// not acknowledged.
func unacknowledged(s *stack.Stack) bool {
	for _, ep := range append(s.RegisteredEndpoints(), s.CleanupEndpoints()...) {
		e, ok := ep.(tcpip.Endpoint)
		if !ok {
			continue
		}
		switch tcp.EndpointState(e.State()) {
		case tcp.StateEstablished, tcp.StateCloseWait, tcp.StateFinWait1, tcp.StateClosing, tcp.StateLastAck:
			return true
		}
	}
	return false
}

// quiet drops netstack's log lines: inside the guest they would go to the app's stderr,
// about events (a retransmitted SYN, a full queue) that its socket calls already answer.
type quiet struct{}

func (quiet) Emit(int, log.Level, time.Time, string, ...any) {}

func netStack() *stack.Stack {
	network.once.Do(func() {
		log.SetTarget(quiet{})
		s := stack.New(stack.Options{
			NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol, arp.NewProtocol},
			TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
			HandleLocal:        true,
		})
		if err := s.CreateNIC(loopbackNIC, loopback.New()); err != nil {
			panic("pith: the loopback interface: " + err.String())
		}
		for _, a := range []tcpip.ProtocolAddress{
			{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4([4]byte{127, 0, 0, 1}), PrefixLen: 8}},
			{Protocol: ipv6.ProtocolNumber, AddressWithPrefix: tcpip.AddrFrom16([16]byte{15: 1}).WithPrefix()},
		} {
			if err := s.AddProtocolAddress(loopbackNIC, a, stack.AddressProperties{}); err != nil {
				panic("pith: a loopback address: " + err.String())
			}
		}
		loopback4, _ := tcpip.NewSubnet(tcpip.AddrFrom4([4]byte{127}), tcpip.MaskFromBytes([]byte{255, 0, 0, 0}))
		routes := []tcpip.Route{{Destination: loopback4, NIC: loopbackNIC}}
		// With no NIC, as on Linux with only lo up, other addresses are unreachable (ENETUNREACH).
		nicRoutes, attached := attachNIC(s)
		network.nic = attached
		routes = append(routes, nicRoutes...)
		s.SetRouteTable(append(routes, tcpip.Route{Destination: header.IPv6EmptySubnet, NIC: loopbackNIC}))
		sack := tcpip.TCPSACKEnabled(true) // Linux's default
		s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack)
		network.stack = s
	})
	return network.stack
}

// Address families and socket types (include/linux/socket.h, net.h).
const (
	afUnspec = 0
	afUnix   = 1
	afInet   = 2
	afInet6  = 10

	sockStream   = 1
	sockDgram    = 2
	sockNonblock = 0x800
	sockCloexec  = 0x80000

	ipprotoICMP   = 1
	ipprotoTCP    = 6
	ipprotoUDP    = 17
	ipprotoICMPv6 = 58
)

// readSockaddr decodes the sockaddr_in or sockaddr_in6 of n bytes at addr, for a socket
// of family: an AF_INET6 socket takes IPv4-mapped addresses as IPv4 ones (netstack's
// dual-stack endpoints do), and an unspecified address is netstack's empty one.
func readSockaddr(addr, n uint64, family int) (tcpip.FullAddress, int64) {
	if n < 2 || n > 128 {
		return tcpip.FullAddress{}, -linux.EINVAL
	}
	b := make([]byte, n)
	if !copyIn(addr, b) {
		return tcpip.FullAddress{}, -linux.EFAULT
	}
	fam := int(binary.LittleEndian.Uint16(b))
	var fa tcpip.FullAddress
	switch {
	case fam == afInet && n >= 16 && family == afInet:
		fa.Port = binary.BigEndian.Uint16(b[2:])
		if ip := [4]byte(b[4:8]); ip != [4]byte{} {
			fa.Addr = tcpip.AddrFrom4(ip)
		}
	case fam == afInet6 && n >= 24 && family == afInet6:
		fa.Port = binary.BigEndian.Uint16(b[2:])
		if ip := [16]byte(b[8:24]); ip != [16]byte{} {
			fa.Addr = tcpip.AddrFrom16(ip)
		}
	case fam == afInet && family == afInet6:
		return fa, -linux.EAFNOSUPPORT
	default:
		return fa, -linux.EINVAL
	}
	return fa, 0
}

// sockaddr encodes fa as family's sockaddr: an IPv4 address on an AF_INET6 socket
// becomes IPv4-mapped.
func sockaddr(fa tcpip.FullAddress, family int) []byte {
	if family == afInet {
		b := make([]byte, 16)
		binary.LittleEndian.PutUint16(b, afInet)
		binary.BigEndian.PutUint16(b[2:], fa.Port)
		if fa.Addr.Len() == 4 {
			copy(b[4:], fa.Addr.AsSlice())
		}
		return b
	}
	b := make([]byte, 28)
	binary.LittleEndian.PutUint16(b, afInet6)
	binary.BigEndian.PutUint16(b[2:], fa.Port)
	switch fa.Addr.Len() {
	case 16:
		copy(b[8:], fa.Addr.AsSlice())
	case 4:
		b[18], b[19] = 0xff, 0xff
		copy(b[20:], fa.Addr.AsSlice())
	}
	return b
}

// putSockaddr writes b to the app's (addr, *lenp) pair as Linux does: truncated to the
// buffer, with the full length stored back.
func putSockaddr(addr, lenp uint64, b []byte) int64 {
	if addr == 0 {
		return 0
	}
	n, ok := getApp[uint32](lenp)
	if !ok {
		return -linux.EFAULT
	}
	if int32(n) < 0 {
		return -linux.EINVAL
	}
	if !copyOut(addr, b[:min(int(n), len(b))]) || !putApp(lenp, uint32(len(b))) {
		return -linux.EFAULT
	}
	return 0
}

// netErrno is the Linux errno for a netstack error, as gVisor's sentry answers it.
func netErrno(e tcpip.Error) int64 {
	switch e.(type) {
	case nil:
		return 0
	case *tcpip.ErrWouldBlock:
		return -linux.EAGAIN
	case *tcpip.ErrConnectStarted:
		return -linux.EINPROGRESS
	case *tcpip.ErrAlreadyConnecting:
		return -linux.EALREADY
	case *tcpip.ErrAlreadyConnected:
		return -linux.EISCONN
	case *tcpip.ErrConnectionRefused:
		return -linux.ECONNREFUSED
	case *tcpip.ErrConnectionReset:
		return -linux.ECONNRESET
	case *tcpip.ErrConnectionAborted:
		return -linux.ECONNABORTED
	case *tcpip.ErrPortInUse, *tcpip.ErrDuplicateAddress:
		return -linux.EADDRINUSE
	case *tcpip.ErrBadLocalAddress, *tcpip.ErrNoPortAvailable:
		return -linux.EADDRNOTAVAIL
	case *tcpip.ErrNotConnected:
		return -linux.ENOTCONN
	case *tcpip.ErrClosedForSend, *tcpip.ErrAborted:
		return -linux.EPIPE
	case *tcpip.ErrNetworkUnreachable, *tcpip.ErrNoNet:
		return -linux.ENETUNREACH
	case *tcpip.ErrHostUnreachable, *tcpip.ErrHostDown:
		return -linux.EHOSTUNREACH
	case *tcpip.ErrTimeout:
		return -linux.ETIMEDOUT
	case *tcpip.ErrMessageTooLong:
		return -linux.EMSGSIZE
	case *tcpip.ErrDestinationRequired:
		return -linux.EDESTADDRREQ
	case *tcpip.ErrNoBufferSpace:
		return -linux.ENOBUFS
	case *tcpip.ErrBroadcastDisabled, *tcpip.ErrNotPermitted:
		return -linux.EACCES
	case *tcpip.ErrAddressFamilyNotSupported:
		return -linux.EAFNOSUPPORT
	case *tcpip.ErrUnknownProtocolOption:
		return -linux.ENOPROTOOPT
	case *tcpip.ErrNotSupported, *tcpip.ErrQueueSizeNotSupported:
		return -linux.EOPNOTSUPP
	case *tcpip.ErrBadAddress:
		return -linux.EFAULT
	case *tcpip.ErrUnknownDevice:
		return -linux.ENODEV
	}
	return -linux.EINVAL // ErrInvalidEndpointState, ErrInvalidOptionValue, ErrAlreadyBound...
}
