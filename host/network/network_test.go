package network

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// guestStack is what the guest's tier 1 runs: a netstack with one Ethernet NIC at
// GuestIP, routed through Gateway. It stands in for the guest here, on the other end of
// an in-memory wire.
func guestStack(t *testing.T, link stack.LinkEndpoint) *stack.Stack {
	t.Helper()
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	if err := s.CreateNIC(1, link); err != nil {
		t.Fatal(err)
	}
	if err := s.AddProtocolAddress(1, tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: addr(GuestIP), PrefixLen: Subnet.Bits()},
	}, stack.AddressProperties{}); err != nil {
		t.Fatal(err)
	}
	subnet, err := tcpip.NewSubnet(addr(Subnet.Addr()), tcpip.MaskFromBytes(net.CIDRMask(Subnet.Bits(), 32)))
	if err != nil {
		t.Fatal(err)
	}
	s.SetRouteTable([]tcpip.Route{ // tier 1's: the subnet on the link, the rest through the gateway
		{Destination: subnet, NIC: 1},
		{Destination: header.IPv4EmptySubnet, Gateway: addr(Gateway), NIC: 1},
	})
	t.Cleanup(func() { s.Close(); s.Wait() })
	return s
}

// wire connects a guest stack and a Network over Ethernet.
func wire(t *testing.T, ports ...Port) (*stack.Stack, *Network) {
	t.Helper()
	return wireDNS(t, hostDNS(), ports...)
}

// wireDNS is wire with the guest's nameserver answering from d.
func wireDNS(t *testing.T, d *dnsServer, ports ...Port) (*stack.Stack, *Network) {
	t.Helper()
	g, h := pipe.New("\x02\x00\x00\x00\x00\x0f", "\x02\x00\x00\x00\x00\x02", 1500)
	guest := guestStack(t, ethernet.New(g))
	n, err := newNetwork(ethernet.New(h), ports, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return guest, n
}

func echo(c net.Conn) {
	io.Copy(c, c)
	c.Close()
}

// A port published on the host reaches a server listening in the guest, both ways,
// with a half close passed on.
func TestPublishedTCPPortReachesTheGuest(t *testing.T) {
	guest, n := wire(t, Port{HostIP: netip.MustParseAddr("127.0.0.1"), GuestPort: 80, Proto: "tcp"})
	ln, err := gonet.ListenTCP(guest, tcpip.FullAddress{NIC: 1, Port: 80}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go echo(c)
		}
	}()
	p := n.Published()[0]
	if p.HostPort == 0 {
		t.Fatalf("no host port picked: %v", p)
	}
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.HostPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sent := bytes.Repeat([]byte("pith"), 256<<10) // 1 MiB
	go func() { c.Write(sent); c.(*net.TCPConn).CloseWrite() }()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, sent) {
		t.Fatalf("echo through the published port: %d of %d bytes, %v", len(got), len(sent), err)
	}
}

// With nothing listening in the guest, a connection to a published port is closed.
func TestPublishedPortWithNoListenerCloses(t *testing.T) {
	_, n := wire(t, Port{HostIP: netip.MustParseAddr("127.0.0.1"), GuestPort: 81, Proto: "tcp"})
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", n.Published()[0].HostPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if b, err := io.ReadAll(c); len(b) != 0 || err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("read %q, %v: want the connection closed", b, err)
	}
}

// UDP published on the host reaches the guest, and its replies come back to the sender.
func TestPublishedUDPPortReachesTheGuest(t *testing.T) {
	guest, n := wire(t, Port{HostIP: netip.MustParseAddr("127.0.0.1"), GuestPort: 53, Proto: "udp"})
	pc, err := gonet.DialUDP(guest, &tcpip.FullAddress{NIC: 1, Port: 53}, nil, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(bytes.ToUpper(buf[:k]), from)
		}
	}()
	c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", n.Published()[0].HostPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	c.Write([]byte("query"))
	buf := make([]byte, 100)
	k, err := c.Read(buf)
	if err != nil || string(buf[:k]) != "QUERY" {
		t.Fatalf("reply %q, %v", buf[:k], err)
	}
}

// The guest's connections go out through host sockets; the gateway stands for the
// host's loopback. A refused connection is refused in the guest too.
func TestGuestConnectionsGoOutThroughTheHost(t *testing.T) {
	guest, _ := wire(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go echo(c)
		}
	}()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	c, err := gonet.DialTCP(guest, tcpip.FullAddress{NIC: 1, Addr: addr(Gateway), Port: port}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	c.Write([]byte("out and back"))
	c.CloseWrite()
	got, err := io.ReadAll(c)
	c.Close()
	if string(got) != "out and back" {
		t.Fatalf("echo from the host: %q, %v", got, err)
	}

	ln.Close()
	if _, err := gonet.DialTCP(guest, tcpip.FullAddress{NIC: 1, Addr: addr(Gateway), Port: port}, ipv4.ProtocolNumber); err == nil ||
		!strings.Contains(err.Error(), "refused") {
		t.Fatalf("dial a closed host port: %v, want refused", err)
	}

	uc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	go func() {
		buf := make([]byte, 1500)
		k, from, err := uc.ReadFrom(buf)
		if err == nil {
			uc.WriteTo(bytes.ToUpper(buf[:k]), from)
		}
	}()
	u, err := gonet.DialUDP(guest, nil, &tcpip.FullAddress{NIC: 1, Addr: addr(Gateway), Port: uint16(uc.LocalAddr().(*net.UDPAddr).Port)}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.SetDeadline(time.Now().Add(20 * time.Second))
	u.Write([]byte("datagram"))
	buf := make([]byte, 100)
	k, err := u.Read(buf)
	if err != nil || string(buf[:k]) != "DATAGRAM" {
		t.Fatalf("UDP reply from the host: %q, %v", buf[:k], err)
	}
}

// A host port already taken fails the network with one line that names the port and
// the fix.
func TestPortInUseIsNamed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	_, h := pipe.New("\x02\x00\x00\x00\x00\x0f", "\x02\x00\x00\x00\x00\x02", 1500)
	_, err = New(ethernet.New(h), []Port{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: port, GuestPort: 80, Proto: "tcp"}})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("port %d is already in use", port)) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("got %v", err)
	}
}

func TestParsePort(t *testing.T) {
	for _, tc := range []struct {
		spec, want, err string
	}{
		{"8080:80", "0.0.0.0:8080:80/tcp", ""},
		{"80", "0.0.0.0:0:80/tcp", ""},
		{"127.0.0.1:8080:80/udp", "127.0.0.1:8080:80/udp", ""},
		{"[::1]:8080:80", "::1:8080:80/tcp", ""},
		{"8080:80/sctp", "", "tcp or udp"},
		{"host:8080:80", "", "not an IP address"},
		{"8080:0", "", "not a port"},
		{"70000:80", "", "not a port"},
		{"", "", "not a port"},
		{"1:2:3:4", "", "expected"},
	} {
		p, err := ParsePort(tc.spec)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %v, want an error containing %q", tc.spec, err, tc.err)
		case tc.err == "" && (err != nil || p.String() != tc.want):
			t.Errorf("%q: %v, %v, want %s", tc.spec, p, err, tc.want)
		}
	}
}

// Why the host refused a port is said with the fix.
func TestPublishErrorsSayTheFix(t *testing.T) {
	p := Port{HostIP: netip.IPv4Unspecified(), HostPort: 80, GuestPort: 8080, Proto: "tcp"}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{syscall.EADDRINUSE, "port 80 is already in use on the host: publish another (-p OTHER:8080)"},
		{syscall.EACCES, "port 80 is below the host's first unprivileged port: publish one above it (-p 8080:8080), or run as root"},
		{syscall.EADDRNOTAVAIL, "0.0.0.0 is not an address of this host"},
	} {
		if got := publishError(p, &net.OpError{Op: "listen", Err: &os.SyscallError{Syscall: "bind", Err: tc.err}}).Error(); !strings.Contains(got, tc.want) {
			t.Errorf("%v: %q; want %q", tc.err, got, tc.want)
		}
	}
	if _, err := New(channel.New(1, 1500, ""), []Port{{HostIP: netip.MustParseAddr("192.0.2.1"), HostPort: 8080, GuestPort: 80, Proto: "tcp"}}); err == nil || !strings.Contains(err.Error(), "192.0.2.1 is not an address of this host") {
		t.Errorf("publishing on an address the host lacks: %v", err)
	}
}
