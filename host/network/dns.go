package network

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// The guest's nameserver, at DNS:53 over UDP and TCP, as in QEMU's user-mode network:
// it answers A from the host's resolver (so the guest sees the host's /etc/hosts, VPN
// and split DNS), AAAA with nothing (the guest has no IPv6 route out), and relays the
// other types to the nameservers of the host's /etc/resolv.conf.
const (
	// dnsTTL is short, in seconds: the host's answers change under a long-running guest
	// (VPN, DHCP).
	dnsTTL = 60
	// dnsLookups bounds the UDP queries in flight, so that a guest cannot make the
	// monitor spawn goroutines without end; the guest's resolver asks again for those
	// dropped past it.
	dnsLookups = 64
	// dnsConns bounds the TCP connections served at once, each answering one query at
	// a time.
	dnsConns = 16
	// dnsTimeout bounds a query: under the 5 s a guest's resolver waits, so that it
	// gets SERVFAIL rather than silence.
	dnsTimeout = 4 * time.Second
	// dnsUpstreamWait bounds each upstream nameserver, so that a second one gets a turn.
	dnsUpstreamWait = 2 * time.Second
	// dnsIdle closes a TCP connection with no query for this long (RFC 7766 6.2.3).
	dnsIdle = 10 * time.Second
	// dnsUDPSize is the most a UDP answer holds without EDNS0 (RFC 1035 4.2.1).
	dnsUDPSize = 512
	// dnsEDNSSize is the UDP size offered in EDNS0: what crosses most paths unfragmented
	// (DNS flag day 2020).
	dnsEDNSSize = 1232
)

// resolver looks up host names: net.DefaultResolver, or a fake in tests.
type resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// dnsServer is what the guest's nameserver asks: a resolver for A, and upstream
// nameservers for the other types (read at each query, as the host's may change).
type dnsServer struct {
	resolver  resolver
	upstreams func() []netip.AddrPort
}

// hostDNS answers as the host would: through its resolver and its /etc/resolv.conf.
func hostDNS() *dnsServer {
	return &dnsServer{resolver: net.DefaultResolver, upstreams: func() []netip.AddrPort { return nameservers("/etc/resolv.conf") }}
}

// nameservers are the nameserver lines of a resolv.conf, at port 53.
func nameservers(path string) []netip.AddrPort {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var ns []netip.AddrPort
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		if ip, err := netip.ParseAddr(f[1]); err == nil {
			ns = append(ns, netip.AddrPortFrom(ip, 53))
		}
	}
	return ns
}

// serveDNS listens at DNS:53 in the network's stack. Bound endpoints take their
// packets before the forwarders see them, so the guest's queries never leave the host.
func (n *Network) serveDNS(d *dnsServer) error {
	at := tcpip.FullAddress{NIC: nic, Addr: addr(DNS), Port: 53}
	pc, err := gonet.DialUDP(n.stack, &at, nil, ipv4.ProtocolNumber)
	if err != nil {
		return fmt.Errorf("the guest's nameserver, UDP: %v", err)
	}
	n.listeners = append(n.listeners, pc)
	ln, err := gonet.ListenTCP(n.stack, at, ipv4.ProtocolNumber)
	if err != nil {
		return fmt.Errorf("the guest's nameserver, TCP: %v", err)
	}
	n.listeners = append(n.listeners, ln)
	n.spawn(func() { n.dnsUDP(d, pc) })
	n.spawn(func() { n.dnsTCP(d, ln) })
	return nil
}

// dnsUDP answers each datagram in its own goroutine, as a lookup may take seconds, but
// no more than dnsLookups at once: past that, queries are dropped.
func (n *Network) dnsUDP(d *dnsServer, pc *gonet.UDPConn) {
	inflight := make(chan struct{}, dnsLookups)
	buf := make([]byte, 65536)
	for {
		k, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		select {
		case inflight <- struct{}{}:
		default:
			continue
		}
		query := slices.Clone(buf[:k])
		if !n.spawn(func() {
			defer func() { <-inflight }()
			ctx, cancel := context.WithTimeout(n.ctx, dnsTimeout)
			defer cancel()
			if reply := d.answer(ctx, query, false); reply != nil {
				pc.WriteTo(reply, from)
			}
		}) {
			return
		}
	}
}

// dnsTCP serves up to dnsConns connections at once; past that, a connection is closed
// at once and the guest's resolver tries again.
func (n *Network) dnsTCP(d *dnsServer, ln *gonet.TCPListener) {
	conns := make(chan struct{}, dnsConns)
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		select {
		case conns <- struct{}{}:
		default:
			c.Close()
			continue
		}
		if !n.spawn(func() {
			defer func() { <-conns }()
			n.dnsConn(d, c)
		}) {
			c.Close()
			return
		}
	}
}

// dnsConn answers the queries of one TCP connection in turn until it is idle for
// dnsIdle, closed, or sends a query that is not one: a stream cannot resynchronize
// after a bad message.
func (n *Network) dnsConn(d *dnsServer, c net.Conn) {
	defer c.Close()
	for {
		c.SetDeadline(time.Now().Add(dnsIdle))
		query, err := readMsg(c)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(n.ctx, dnsTimeout)
		reply := d.answer(ctx, query, true)
		cancel()
		if reply == nil || len(reply) > 0xffff {
			return
		}
		c.SetDeadline(time.Now().Add(dnsIdle))
		if _, err := c.Write(framed(reply)); err != nil {
			return
		}
	}
}

// readMsg reads a DNS message from a TCP stream: a 2-byte length, then the message
// (RFC 1035 4.2.2).
func readMsg(r io.Reader) ([]byte, error) {
	var size [2]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint16(size[:]))
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

// framed is msg with the 2-byte length DNS over TCP puts before it.
func framed(msg []byte) []byte {
	return append(binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(msg)), uint16(len(msg))), msg...)
}

// answer is the reply to query, asked over TCP or UDP, or nil for a query that is not
// one (unparsable, a response, or not exactly one question), which is dropped.
func (d *dnsServer) answer(ctx context.Context, query []byte, tcp bool) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil || h.Response {
		return nil // a response is never answered: two servers must not echo each other
	}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 {
		return nil
	}
	q := qs[0]
	limit, edns, ok := udpLimit(&p)
	if !ok {
		return nil
	}
	reply := dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	var msg []byte
	switch {
	case h.OpCode != 0:
		reply.RCode = dnsmessage.RCodeNotImplemented
		msg = build(reply, q, nil, edns)
	case q.Class == dnsmessage.ClassINET && q.Type == dnsmessage.TypeA:
		var addrs []netip.Addr
		// Unrooted, as the host's /etc/hosts names are: Go's resolver matches
		// "localhost" there, not "localhost.".
		addrs, reply.RCode = d.lookup(ctx, strings.TrimSuffix(q.Name.String(), "."))
		msg = build(reply, q, addrs, edns)
	case q.Class == dnsmessage.ClassINET && q.Type == dnsmessage.TypeAAAA:
		msg = build(reply, q, nil, edns)
	default:
		if msg = d.forward(ctx, query, tcp); msg == nil {
			reply.RCode = dnsmessage.RCodeServerFailure
			msg = build(reply, q, nil, edns)
		}
	}
	if tcp || len(msg) <= limit {
		return msg
	}
	// Too big for the guest's UDP buffer: the header and question with TC set send it
	// to ask again over TCP (RFC 2181 9: no partial answer to cache).
	var rp dnsmessage.Parser
	rh, err := rp.Start(msg)
	if err != nil {
		return nil
	}
	rh.Truncated = true
	return build(rh, q, nil, false)
}

// udpLimit reads the rest of a query after its question, and says how big a UDP
// answer it takes: 512 bytes, or more if its EDNS0 OPT record offers more (RFC 6891
// 6.2.5). ok is false for a query that does not parse to its end.
func udpLimit(p *dnsmessage.Parser) (limit int, edns, ok bool) {
	if p.SkipAllAnswers() != nil || p.SkipAllAuthorities() != nil {
		return 0, false, false
	}
	limit = dnsUDPSize
	for {
		h, err := p.AdditionalHeader()
		if err == dnsmessage.ErrSectionDone {
			return limit, edns, true
		}
		if err != nil {
			return 0, false, false
		}
		if h.Type == dnsmessage.TypeOPT {
			edns = true
			limit = max(limit, int(h.Class))
		}
		if p.SkipAdditional() != nil {
			return 0, false, false
		}
	}
}

// build is a reply with question q and an A record for each of addrs, and an OPT record
// if the query had one, or nil if it does not pack.
func build(h dnsmessage.Header, q dnsmessage.Question, addrs []netip.Addr, edns bool) []byte {
	b := dnsmessage.NewBuilder(make([]byte, 0, dnsUDPSize), h)
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil
	}
	for _, a := range addrs {
		rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: dnsTTL}
		if b.AResource(rh, dnsmessage.AResource{A: a.As4()}) != nil {
			return nil
		}
	}
	if edns {
		var rh dnsmessage.ResourceHeader
		if rh.SetEDNS0(dnsEDNSSize, h.RCode, false) != nil || b.StartAdditionals() != nil ||
			b.OPTResource(rh, dnsmessage.OPTResource{}) != nil {
			return nil
		}
	}
	msg, err := b.Finish()
	if err != nil {
		return nil
	}
	return msg
}

// lookup is the guest's A lookup of name, answered by the host's resolver. The host's
// loopback addresses become the gateway, which stands for them in the guest (hostAddr).
func (d *dnsServer) lookup(ctx context.Context, name string) ([]netip.Addr, dnsmessage.RCode) {
	found, err := d.resolver.LookupNetIP(ctx, "ip4", name)
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return nil, dnsmessage.RCodeNameError
	case err != nil:
		return nil, dnsmessage.RCodeServerFailure
	}
	var addrs []netip.Addr
	for _, a := range found {
		a = a.Unmap()
		if !a.Is4() {
			continue
		}
		if a.IsLoopback() {
			a = Gateway
		}
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	return addrs, dnsmessage.RCodeSuccess
}

// forward relays query to the upstream nameservers in turn, over the transport the
// guest used, and returns the first reply, or nil if none answered.
func (d *dnsServer) forward(ctx context.Context, query []byte, tcp bool) []byte {
	for _, ns := range d.upstreams() {
		if reply := exchange(ctx, ns, query, tcp); reply != nil {
			return reply
		}
	}
	return nil
}

// exchange asks nameserver ns query and returns its reply, or nil if none came within
// dnsUpstreamWait.
func exchange(ctx context.Context, ns netip.AddrPort, query []byte, tcp bool) []byte {
	ctx, cancel := context.WithTimeout(ctx, dnsUpstreamWait)
	defer cancel()
	network := "udp"
	if tcp {
		network = "tcp"
	}
	var dialer net.Dialer
	c, err := dialer.DialContext(ctx, network, ns.String())
	if err != nil {
		return nil
	}
	defer c.Close()
	// The deadline ends a silent nameserver's wait; closing on cancel ends it at once
	// when the network closes.
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	defer context.AfterFunc(ctx, func() { c.Close() })()
	if tcp {
		if _, err := c.Write(framed(query)); err != nil {
			return nil
		}
		reply, err := readMsg(c)
		if err != nil || !answers(reply, query) {
			return nil
		}
		return reply
	}
	if _, err := c.Write(query); err != nil {
		return nil
	}
	buf := make([]byte, 65536)
	for {
		k, err := c.Read(buf)
		if err != nil {
			return nil
		}
		if answers(buf[:k], query) {
			return buf[:k]
		}
	}
}

// answers reports whether reply is a response with query's ID. Any other datagram on
// the socket, stray or forged, is passed over.
func answers(reply, query []byte) bool {
	return len(reply) >= 12 && reply[0] == query[0] && reply[1] == query[1] && reply[2]&0x80 != 0
}
