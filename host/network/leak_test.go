package network

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// usage is what a network could leak: goroutines and open descriptors.
type usage struct{ goroutines, fds int }

func now(t *testing.T) usage {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return usage{runtime.NumGoroutine(), len(fds)}
}

// settles waits for usage to come back to within a few of base: connections end
// asynchronously after their last close.
func settles(t *testing.T, base usage) usage {
	t.Helper()
	const slack = 5
	var u usage
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		runtime.GC() // the pipes of io.Copy's splice between two host sockets wait in a pool for it
		if u = now(t); u.goroutines <= base.goroutines+slack && u.fds <= base.fds+slack {
			return u
		}
	}
	var dump strings.Builder
	pprof.Lookup("goroutine").WriteTo(&dump, 1)
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		to, _ := os.Readlink("/proc/self/fd/" + fd.Name())
		fmt.Fprintf(&dump, "fd %s: %s\n", fd.Name(), to)
	}
	t.Fatalf("after the connections: %d goroutines and %d fds, from %d and %d\n%s", u.goroutines, u.fds, base.goroutines, base.fds, dump.String())
	return u
}

// serve accepts on ln until it closes, handing each connection to handle.
func serve(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go handle(c)
	}
}

// hammer makes total connections with dial, 32 at a time, each sending a few bytes and
// reading them back before it closes.
func hammer(t *testing.T, total int, dial func() (net.Conn, error)) {
	t.Helper()
	const dialers = 32
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, dialers)
	for range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 8)
			for next.Add(1) <= int64(total) {
				c, err := dial()
				if err != nil {
					errs <- err
					return
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				_, err = c.Write([]byte("ping"))
				if err == nil {
					_, err = io.ReadFull(c, buf[:4])
				}
				c.Close()
				if err != nil || string(buf[:4]) != "ping" {
					errs <- fmt.Errorf("echo: %q, %v", buf[:4], err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

const leakConns = 10000

// Connections through a published port leave nothing behind in the host process.
func TestPublishedConnectionsLeakNothing(t *testing.T) {
	guest, n := wire(t, Port{HostIP: loopback, GuestPort: 80, Proto: "tcp"})
	ln, err := gonet.ListenTCP(guest, tcpip.FullAddress{NIC: 1, Port: 80}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serve(ln, echo)
	at := fmt.Sprintf("127.0.0.1:%d", n.Published()[0].HostPort)
	base := now(t)
	start := time.Now()
	hammer(t, leakConns, func() (net.Conn, error) { return net.Dial("tcp", at) })
	took := time.Since(start)
	after := settles(t, base)
	t.Logf("%d connections in %v; goroutines %d → %d, fds %d → %d", leakConns, took.Round(time.Millisecond), base.goroutines, after.goroutines, base.fds, after.fds)
}

// The guest's connections out to the host leave nothing behind either.
func TestOutboundConnectionsLeakNothing(t *testing.T) {
	guest, _ := wire(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serve(ln, echo)
	to := tcpip.FullAddress{NIC: 1, Addr: addr(Gateway), Port: uint16(ln.Addr().(*net.TCPAddr).Port)}
	base := now(t)
	start := time.Now()
	hammer(t, leakConns, func() (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return gonet.DialContextTCP(ctx, guest, to, ipv4.ProtocolNumber)
	})
	took := time.Since(start)
	after := settles(t, base)
	t.Logf("%d connections in %v; goroutines %d → %d, fds %d → %d", leakConns, took.Round(time.Millisecond), base.goroutines, after.goroutines, base.fds, after.fds)
}

// closes runs n.Close and fails the test if it does not return soon.
func closes(t *testing.T, n *Network, within time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { n.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(within):
		var dump strings.Builder
		pprof.Lookup("goroutine").WriteTo(&dump, 1)
		t.Fatalf("Close still runs after %v\n%s", within, dump.String())
	}
}

// Close ends what is still open, in both directions and for both protocols, though no
// end closes its side, and the host's ports are free as soon as it returns.
func TestCloseEndsOpenConnectionsAndFreesThePorts(t *testing.T) {
	guest, n := wire(t,
		Port{HostIP: loopback, GuestPort: 80, Proto: "tcp"},
		Port{HostIP: loopback, GuestPort: 53, Proto: "udp"})
	ended := make(chan struct{})
	defer close(ended)
	// answer answers one ping and holds the connection until the test ends.
	answer := func(c net.Conn) {
		buf := make([]byte, 4)
		io.ReadFull(c, buf)
		c.Write(buf)
		<-ended
		c.Close()
	}
	// answerDatagrams answers every datagram, until pc closes.
	answerDatagrams := func(pc net.PacketConn) {
		buf := make([]byte, 1500)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:k], from)
		}
	}
	ln, err := gonet.ListenTCP(guest, tcpip.FullAddress{NIC: 1, Port: 80}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serve(ln, answer)
	pc, err := gonet.DialUDP(guest, &tcpip.FullAddress{NIC: 1, Port: 53}, nil, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go answerDatagrams(pc)
	host, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	go serve(host, answer)
	hostUDP, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostUDP.Close()
	go answerDatagrams(hostUDP)

	ping := func(c net.Conn, err error) net.Conn {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4)
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("%q, %v", buf, err)
		}
		return c
	}
	tcpPort, udpPort := n.Published()[0].HostPort, n.Published()[1].HostPort
	published := ping(net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tcpPort)))
	ping(net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", udpPort)))
	ping(gonet.DialTCP(guest, tcpip.FullAddress{NIC: 1, Addr: addr(Gateway), Port: uint16(host.Addr().(*net.TCPAddr).Port)}, ipv4.ProtocolNumber))
	ping(gonet.DialUDP(guest, nil, &tcpip.FullAddress{NIC: 1, Addr: addr(Gateway), Port: uint16(hostUDP.LocalAddr().(*net.UDPAddr).Port)}, ipv4.ProtocolNumber))

	closes(t, n, 5*time.Second)
	if b, err := io.ReadAll(published); len(b) != 0 || err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("the published connection after Close: read %q, %v: want it closed", b, err)
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", tcpPort))
	if err != nil {
		t.Fatalf("the published TCP port after Close: %v", err)
	}
	l.Close()
	p, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", udpPort))
	if err != nil {
		t.Fatalf("the published UDP port after Close: %v", err)
	}
	p.Close()
}

// A connection to a published port waits for the guest to answer, but Close does not.
func TestCloseDoesNotWaitForAGuestThatNeverAnswers(t *testing.T) {
	_, h := pipe.New("\x02\x00\x00\x00\x00\x0f", "\x02\x00\x00\x00\x00\x02", 1500) // no guest on the far end
	n, err := New(ethernet.New(h), []Port{{HostIP: loopback, GuestPort: 80, Proto: "tcp"}})
	if err != nil {
		t.Fatal(err)
	}
	base := now(t)
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", n.Published()[0].HostPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(100 * time.Millisecond) // accepted, and dialling the guest
	closes(t, n, 2*time.Second)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c); len(b) != 0 || err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("read %q, %v: want the connection closed", b, err)
	}
	c.Close()
	settles(t, base)
}

// A guest holds at most maxOutbound host sockets through the gateway: past that its
// connections are refused, and one it closes frees a place.
func TestOutboundConnectionsAreCapped(t *testing.T) {
	guest, n := wire(t)
	n.maxOutbound = 3
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serve(ln, echo)
	to := tcpip.FullAddress{NIC: 1, Addr: addr(Gateway), Port: uint16(ln.Addr().(*net.TCPAddr).Port)}
	dial := func() (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return gonet.DialContextTCP(ctx, guest, to, ipv4.ProtocolNumber)
	}
	var open []net.Conn
	for range 3 {
		c, err := dial()
		if err != nil {
			t.Fatalf("connection %d of 3: %v", len(open)+1, err)
		}
		open = append(open, c)
	}
	if c, err := dial(); err == nil {
		c.Close()
		t.Fatal("a fourth connection was let through")
	}
	open[0].Close()
	var c net.Conn
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(10 * time.Millisecond) {
		if c, err = dial(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("after one closed: %v", err)
	}
	c.Close()
	for _, c := range open[1:] {
		c.Close()
	}
}
