// Package network is a unikernel's user-mode network on the host, with no root: the far
// end of its NIC, a gateway that carries its TCP and UDP out through host sockets, a
// nameserver that answers from the host's resolver, and the host ports published into
// it (-p), on gVisor's netstack.
package network

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// The guest's network, as QEMU's user-mode network numbers it: the guest at .15, the
// gateway at .2, which also stands for the host's own loopback, and the nameserver at .3
// (dns.go), which answers from the host's resolver.
var (
	Subnet  = netip.MustParsePrefix("10.0.2.0/24")
	Gateway = netip.MustParseAddr("10.0.2.2")
	DNS     = netip.MustParseAddr("10.0.2.3")
	GuestIP = netip.MustParseAddr("10.0.2.15")
)

const nic tcpip.NICID = 1

// Network is one guest's network: a netstack on the host whose one NIC is the guest's
// link.
type Network struct {
	stack     *stack.Stack
	listeners []io.Closer
	published []Port
	outflows  sync.WaitGroup // connections' guest-to-host copies (relay)
	// outbound counts the host sockets the guest holds open through the gateway, at most
	// maxOutbound: each is a descriptor of the monitor's, and the guest is not trusted.
	outbound    atomic.Int32
	maxOutbound int32
	ctx         context.Context // done once Close begins: every forwarder ends with it
	cancel      context.CancelFunc

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // the forwarders' goroutines, which Close waits for
}

// quiet drops netstack's log lines, which would reach pith's stderr among the app's
// output, about the guest's traffic (a retransmitted SYN, a full queue).
type quiet struct{}

func (quiet) Emit(int, log.Level, time.Time, string, ...any) {}

// New starts a guest's network on link (Ethernet frames to and from the guest) and
// publishes ports. A port that cannot be published fails New with one line naming it.
func New(link stack.LinkEndpoint, ports []Port) (*Network, error) {
	log.SetTarget(quiet{})
	return newNetwork(link, ports, hostDNS())
}

// newNetwork is New with the DNS server's resolver and upstream nameservers given, so
// that tests need not depend on the host's.
func newNetwork(link stack.LinkEndpoint, ports []Port, dns *dnsServer) (*Network, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	ctx, cancel := context.WithCancel(context.Background())
	n := &Network{stack: s, ctx: ctx, cancel: cancel, maxOutbound: maxOutbound}
	if err := s.CreateNIC(nic, link); err != nil {
		n.Close()
		return nil, fmt.Errorf("the guest's network: %v", err)
	}
	// The gateway answers for every address: what the guest sends anywhere arrives here,
	// and the forwarders carry it out.
	s.SetPromiscuousMode(nic, true)
	s.SetSpoofing(nic, true)
	// The gateway's and the nameserver's addresses are the stack's own, so that it
	// answers the guest's ARP for them and the DNS server can bind to its.
	for _, a := range []netip.Addr{Gateway, DNS} {
		if err := s.AddProtocolAddress(nic, tcpip.ProtocolAddress{
			Protocol:          ipv4.ProtocolNumber,
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: addr(a), PrefixLen: Subnet.Bits()},
		}, stack.AddressProperties{}); err != nil {
			n.Close()
			return nil, fmt.Errorf("the address %s: %v", a, err)
		}
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: nic}})
	s.SetTransportProtocolHandler(tcp.ProtocolNumber, tcp.NewForwarder(s, 0, 1024, n.outboundTCP).HandlePacket)
	s.SetTransportProtocolHandler(udp.ProtocolNumber, udp.NewForwarder(s, n.outboundUDP).HandlePacket)
	if err := n.serveDNS(dns); err != nil {
		n.Close()
		return nil, err
	}
	for _, p := range ports {
		if err := n.publish(p); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// Published is the ports published, with the host ports the host picked.
func (n *Network) Published() []Port { return n.published }

// lingerMax bounds how long Close waits for the guest's last bytes to reach the host.
const lingerMax = time.Second

// Close stops the network: listeners, forwarded connections and the stack. What the
// guest sent before it ended (its last answers, which it waited to see acknowledged) is
// delivered first. When it returns, the published host ports are free.
func (n *Network) Close() {
	n.mu.Lock()
	closed := n.closed
	n.closed = true
	n.mu.Unlock()
	if closed {
		return
	}
	delivered := make(chan struct{})
	go func() {
		n.outflows.Wait()
		close(delivered)
	}()
	select {
	case <-delivered:
	case <-time.After(lingerMax):
	}
	n.cancel()
	for _, l := range n.listeners {
		l.Close()
	}
	n.stack.Close()
	n.wg.Wait()
	n.stack.Wait()
}

// spawn runs f on a goroutine Close waits for, unless Close has begun: the stack can
// still hand the forwarders a packet while Close waits.
func (n *Network) spawn(f func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

func addr(a netip.Addr) tcpip.Address { return tcpip.AddrFrom4(a.As4()) }

// hostAddr is where a guest's connection to a goes on the host: the gateway stands for
// the host's loopback, as in QEMU's user-mode network.
func hostAddr(a tcpip.Address, port uint16) string {
	ip := netip.AddrFrom4(a.As4())
	if ip == Gateway {
		ip = netip.MustParseAddr("127.0.0.1")
	}
	return netip.AddrPortFrom(ip, port).String()
}

// outboundTCP carries a connection the guest opens out through a host socket. The guest
// sees its SYN answered only once the host connection is up, and refused if it fails.
func (n *Network) outboundTCP(r *tcp.ForwarderRequest) {
	id := r.ID()
	if id.LocalAddress == addr(DNS) {
		r.Complete(true) // only port 53 is served there (dns.go), and not by the host
		return
	}
	if !n.takeOutbound() {
		r.Complete(true) // refused, as a host out of descriptors would
		return
	}
	spawned := n.spawn(func() {
		defer n.outbound.Add(-1)
		var d net.Dialer
		ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
		host, err := d.DialContext(ctx, "tcp", hostAddr(id.LocalAddress, id.LocalPort))
		cancel()
		if err != nil {
			r.Complete(true) // a reset: connection refused, as the host saw it
			return
		}
		var wq waiter.Queue
		ep, tcpErr := r.CreateEndpoint(&wq)
		r.Complete(false)
		if tcpErr != nil {
			host.Close()
			return
		}
		n.relay(host, gonet.NewTCPConn(&wq, ep))
	})
	if !spawned {
		n.outbound.Add(-1)
		r.Complete(true)
	}
}

// maxOutbound is how many host sockets one guest may hold open through the gateway, TCP
// and UDP together: far above what a service needs, far below the monitor's descriptors.
const maxOutbound = 4096

// takeOutbound counts one more host socket for the guest, if it may have one.
func (n *Network) takeOutbound() bool {
	if n.outbound.Add(1) > n.maxOutbound {
		n.outbound.Add(-1)
		return false
	}
	return true
}

// outboundUDP carries the guest's datagrams to one destination through a host socket,
// and the replies back, until the flow is idle for a minute.
func (n *Network) outboundUDP(r *udp.ForwarderRequest) bool {
	id := r.ID()
	if id.LocalAddress == addr(DNS) {
		return false // port unreachable: only port 53 is served there (dns.go)
	}
	if !n.takeOutbound() {
		return false // port unreachable: the guest holds all the host sockets it may
	}
	var wq waiter.Queue
	ep, err := r.CreateEndpoint(&wq)
	if err != nil {
		n.outbound.Add(-1)
		return false
	}
	guest := gonet.NewUDPConn(&wq, ep)
	host, dialErr := net.Dial("udp", hostAddr(id.LocalAddress, id.LocalPort))
	if dialErr != nil {
		n.outbound.Add(-1)
		guest.Close()
		return true
	}
	if !n.spawn(func() {
		defer n.outbound.Add(-1)
		relayDatagrams(n.ctx, guest, host, time.Minute)
	}) {
		n.outbound.Add(-1)
		guest.Close()
		host.Close()
	}
	return true
}

// relay copies both ways between a host connection and a guest's until both directions
// end, passing on a half close, or until Close begins: a side that never closes would
// otherwise keep the other open, and Close waiting, for ever. The guest-to-host
// direction counts in n.outflows, so that Close first delivers what the guest sent
// before it ended.
func (n *Network) relay(host, guest net.Conn) {
	stop := context.AfterFunc(n.ctx, func() { host.Close(); guest.Close() })
	defer stop()
	var wg sync.WaitGroup
	half := func(dst, src net.Conn) {
		defer wg.Done()
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	wg.Add(2)
	n.outflows.Add(1)
	go func() {
		defer n.outflows.Done()
		half(host, guest)
	}()
	go half(guest, host)
	wg.Wait()
	host.Close()
	guest.Close()
}

// relayDatagrams copies datagrams both ways until neither side sends for idle, or until
// ctx is done.
func relayDatagrams(ctx context.Context, a, b net.Conn, idle time.Duration) {
	stop := context.AfterFunc(ctx, func() { a.Close(); b.Close() })
	defer stop()
	var wg sync.WaitGroup
	one := func(dst, src net.Conn) {
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			src.SetReadDeadline(time.Now().Add(idle))
			k, err := src.Read(buf)
			if err != nil {
				a.Close()
				b.Close()
				return
			}
			dst.Write(buf[:k])
		}
	}
	wg.Add(2)
	go one(a, b)
	go one(b, a)
	wg.Wait()
}

// publish listens on the host for p and carries each connection or datagram flow to
// the guest's port.
func (n *Network) publish(p Port) error {
	hostAt := netip.AddrPortFrom(p.HostIP, p.HostPort).String()
	guestAt := tcpip.FullAddress{NIC: nic, Addr: addr(GuestIP), Port: p.GuestPort}
	if p.Proto == "udp" {
		pc, err := net.ListenPacket("udp", hostAt)
		if err != nil {
			return publishError(p, err)
		}
		n.listeners = append(n.listeners, pc)
		p.HostPort = uint16(pc.LocalAddr().(*net.UDPAddr).Port)
		n.published = append(n.published, p)
		n.spawn(func() { n.publishUDP(pc, guestAt) })
		return nil
	}
	ln, err := net.Listen("tcp", hostAt)
	if err != nil {
		return publishError(p, err)
	}
	n.listeners = append(n.listeners, ln)
	p.HostPort = uint16(ln.Addr().(*net.TCPAddr).Port)
	n.published = append(n.published, p)
	n.spawn(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			spawned := n.spawn(func() {
				ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
				g, err := gonet.DialContextTCP(ctx, n.stack, guestAt, ipv4.ProtocolNumber)
				cancel()
				if err != nil {
					c.Close() // nothing listens on the guest's port (yet)
					return
				}
				n.relay(c, g)
			})
			if !spawned {
				c.Close()
			}
		}
	})
	return nil
}

// publishUDP gives each host peer its own flow to the guest's port, so replies go back
// to the peer that sent.
func (n *Network) publishUDP(pc net.PacketConn, guestAt tcpip.FullAddress) {
	var mu sync.Mutex
	flows := map[string]*gonet.UDPConn{}
	buf := make([]byte, 65536)
	for {
		k, from, err := pc.ReadFrom(buf)
		if err != nil {
			mu.Lock()
			for _, f := range flows {
				f.Close()
			}
			mu.Unlock()
			return
		}
		mu.Lock()
		f := flows[from.String()]
		if f == nil {
			f, err = gonet.DialUDP(n.stack, nil, &guestAt, ipv4.ProtocolNumber)
			if err != nil {
				mu.Unlock()
				continue
			}
			flows[from.String()] = f
			n.spawn(func() {
				reply := make([]byte, 65536)
				for {
					f.SetReadDeadline(time.Now().Add(time.Minute))
					k, err := f.Read(reply)
					if err != nil {
						mu.Lock()
						delete(flows, from.String())
						mu.Unlock()
						f.Close()
						return
					}
					pc.WriteTo(reply[:k], from)
				}
			})
		}
		mu.Unlock()
		f.Write(buf[:k])
	}
}

func publishError(p Port, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("-p %s: port %d is already in use on the host: publish another (-p OTHER:%d)", p, p.HostPort, p.GuestPort)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("-p %s: port %d is below the host's first unprivileged port: publish one above it (-p 8080:%d), or run as root", p, p.HostPort, p.GuestPort)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("-p %s: %s is not an address of this host", p, p.HostIP)
	}
	return fmt.Errorf("-p %s: %v", p, err)
}
