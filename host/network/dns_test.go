package network

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// fakeResolver answers from hosts; other names are not found. With wait set, lookups
// wait for it (or their context) and count how many wait at once.
type fakeResolver struct {
	hosts         map[string][]netip.Addr
	wait          chan struct{}
	lookups, most atomic.Int32
	inflight      atomic.Int32
}

func (r *fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.lookups.Add(1)
	if network != "ip4" {
		return nil, errors.New("only ip4 is asked for")
	}
	if r.wait != nil {
		k := r.inflight.Add(1)
		defer r.inflight.Add(-1)
		for m := r.most.Load(); k > m && !r.most.CompareAndSwap(m, k); m = r.most.Load() {
		}
		select {
		case <-r.wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if host == "broken" {
		return nil, &net.DNSError{Err: "server misbehaving", Name: host}
	}
	addrs, ok := r.hosts[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return addrs, nil
}

func addrs(s ...string) []netip.Addr {
	var a []netip.Addr
	for _, x := range s {
		a = append(a, netip.MustParseAddr(x))
	}
	return a
}

// many is more addresses than a 512-byte answer holds.
var many = func() []netip.Addr {
	var a []netip.Addr
	for i := range 40 {
		a = append(a, netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}))
	}
	return a
}()

func testResolver() *fakeResolver {
	return &fakeResolver{hosts: map[string][]netip.Addr{
		"web.example": addrs("192.0.2.10", "192.0.2.11"),
		// The host's own names: its loopback is the gateway in the guest; IPv6 is left out.
		"host.example": addrs("127.0.0.1", "127.0.1.1", "::1", "::ffff:192.0.2.7"),
		"many.example": many,
	}}
}

// query is a DNS query for name, with an EDNS0 OPT record offering ednsSize if not 0.
func query(t testing.TB, id uint16, name string, typ dnsmessage.Type, ednsSize int) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, RecursionDesired: true})
	b.StartQuestions()
	if err := b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}); err != nil {
		t.Fatal(err)
	}
	if ednsSize != 0 {
		var rh dnsmessage.ResourceHeader
		rh.SetEDNS0(ednsSize, dnsmessage.RCodeSuccess, false)
		b.StartAdditionals()
		b.OPTResource(rh, dnsmessage.OPTResource{})
	}
	q, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// reply parses an answer and checks what every answer to q keeps: its ID and question,
// and RA.
func reply(t testing.TB, q, b []byte) dnsmessage.Message {
	t.Helper()
	var m, qm dnsmessage.Message
	if err := m.Unpack(b); err != nil {
		t.Fatalf("the answer does not parse: %v", err)
	}
	if err := qm.Unpack(q); err != nil {
		t.Fatal(err)
	}
	if !m.Response || m.ID != qm.ID || !m.RecursionAvailable || len(m.Questions) != 1 || m.Questions[0] != qm.Questions[0] {
		t.Fatalf("answer %+v to query %+v", m.Header, qm)
	}
	return m
}

// aRecords are the addresses of m's A records, which must all have name and TTL 60.
func aRecords(t testing.TB, m dnsmessage.Message) []netip.Addr {
	t.Helper()
	var got []netip.Addr
	for _, r := range m.Answers {
		a, ok := r.Body.(*dnsmessage.AResource)
		if !ok || r.Header.Name != m.Questions[0].Name || r.Header.TTL != dnsTTL {
			t.Fatalf("answer record %v", r)
		}
		got = append(got, netip.AddrFrom4(a.A))
	}
	return got
}

func dnsAt(port uint16) *tcpip.FullAddress {
	return &tcpip.FullAddress{NIC: 1, Addr: addr(DNS), Port: port}
}

// askUDP sends q from the guest to the nameserver and returns the answer, or nil if
// none comes within wait.
func askUDP(t testing.TB, guest *stack.Stack, q []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := gonet.DialUDP(guest, nil, dnsAt(53), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write(q); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	k, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:k]
}

func dialTCP(t testing.TB, guest *stack.Stack) net.Conn {
	t.Helper()
	c, err := gonet.DialTCP(guest, *dnsAt(53), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// askTCP sends q on c and returns the answer.
func askTCP(t testing.TB, c net.Conn, q []byte) []byte {
	t.Helper()
	if _, err := c.Write(framed(q)); err != nil {
		t.Fatal(err)
	}
	b, err := readMsg(c)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return b
}

// The guest's A lookups are answered from the host's resolver over UDP and TCP, the
// host's loopback becoming the gateway; a name not found is NXDOMAIN and AAAA is empty,
// without asking the resolver. TCP answers several queries on a connection.
func TestDNSAnswersTheGuest(t *testing.T) {
	r := testResolver()
	guest, _ := wireDNS(t, &dnsServer{resolver: r, upstreams: func() []netip.AddrPort { return nil }})
	c := dialTCP(t, guest)
	for _, tc := range []struct {
		name  string
		typ   dnsmessage.Type
		rcode dnsmessage.RCode
		want  []netip.Addr
	}{
		{"web.example.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, addrs("192.0.2.10", "192.0.2.11")},
		{"host.example.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, addrs("10.0.2.2", "192.0.2.7")},
		{"missing.example.", dnsmessage.TypeA, dnsmessage.RCodeNameError, nil},
		{"broken.", dnsmessage.TypeA, dnsmessage.RCodeServerFailure, nil},
		{"web.example.", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, nil},
	} {
		for _, tcp := range []bool{false, true} {
			q := query(t, 0x1234, tc.name, tc.typ, 0)
			before := r.lookups.Load()
			var b []byte
			if tcp {
				b = askTCP(t, c, q)
			} else if b = askUDP(t, guest, q, 20*time.Second); b == nil {
				t.Fatalf("%s %v over UDP: no answer", tc.name, tc.typ)
			}
			m := reply(t, q, b)
			if got := aRecords(t, m); m.RCode != tc.rcode || !slices.Equal(got, tc.want) {
				t.Errorf("%s %v (TCP %v): %v %v, want %v %v", tc.name, tc.typ, tcp, m.RCode, got, tc.rcode, tc.want)
			}
			if asked := r.lookups.Load() - before; tc.typ == dnsmessage.TypeAAAA && asked != 0 {
				t.Errorf("AAAA asked the resolver %d times", asked)
			}
		}
	}
}

// Only port 53 is served at the nameserver's address, and nothing sent there is carried
// out to the host.
func TestDNSAddressIsNotForwarded(t *testing.T) {
	guest, _ := wireDNS(t, &dnsServer{resolver: testResolver(), upstreams: func() []netip.AddrPort { return nil }})
	if _, err := gonet.DialTCP(guest, *dnsAt(80), ipv4.ProtocolNumber); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("TCP to port 80 of the nameserver: %v, want refused", err)
	}
	c, err := gonet.DialUDP(guest, nil, dnsAt(54), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	c.Write([]byte("anyone?"))
	if k, err := c.Read(make([]byte, 100)); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("UDP to port 54 of the nameserver: %d bytes, %v; want refused", k, err)
	}
}

// upstream is a nameserver on the host's loopback, over UDP and TCP at one port, that
// answers MX queries for example.org. Over UDP it first sends a reply with another ID,
// which must be passed over.
func upstream(t *testing.T) netip.AddrPort {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	for range 10 { // the UDP port picked may be taken for TCP
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no port free for both UDP and TCP")
	}
	t.Cleanup(func() { pc.Close(); ln.Close() })
	answer := func(q []byte) []byte {
		var m dnsmessage.Message
		if err := m.Unpack(q); err != nil {
			return nil
		}
		m.Response, m.RecursionAvailable = true, true
		m.Answers = []dnsmessage.Resource{{
			Header: dnsmessage.ResourceHeader{Name: m.Questions[0].Name, Type: dnsmessage.TypeMX, Class: dnsmessage.ClassINET, TTL: 300},
			Body:   &dnsmessage.MXResource{Pref: 10, MX: dnsmessage.MustNewName("mail.example.org.")},
		}}
		m.Additionals = nil
		b, _ := m.Pack()
		return b
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if a := answer(buf[:k]); a != nil {
				forged := slices.Clone(a)
				forged[0] ^= 0xff
				pc.WriteTo(forged, from)
				pc.WriteTo(a, from)
			}
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					q, err := readMsg(c)
					if err != nil {
						return
					}
					c.Write(framed(answer(q)))
				}
			}()
		}
	}()
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// Types other than A and AAAA go to the host's nameservers, the first that answers,
// and their reply comes back as it was; with none answering, the guest gets SERVFAIL.
func TestDNSForwardsOtherTypes(t *testing.T) {
	live := upstream(t)
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAt := netip.MustParseAddrPort(dead.LocalAddr().String())
	dead.Close() // refused at once, over UDP and TCP
	var servers atomic.Pointer[[]netip.AddrPort]
	servers.Store(&[]netip.AddrPort{deadAt, live})
	guest, _ := wireDNS(t, &dnsServer{resolver: testResolver(), upstreams: func() []netip.AddrPort { return *servers.Load() }})
	c := dialTCP(t, guest)
	for _, tcp := range []bool{false, true} {
		q := query(t, 0xbeef, "example.org.", dnsmessage.TypeMX, 0)
		var b []byte
		if tcp {
			b = askTCP(t, c, q)
		} else {
			b = askUDP(t, guest, q, 20*time.Second)
		}
		if b == nil {
			t.Fatalf("MX (TCP %v): no answer", tcp)
		}
		m := reply(t, q, b)
		if len(m.Answers) != 1 || m.Answers[0].Body.(*dnsmessage.MXResource).MX.String() != "mail.example.org." {
			t.Fatalf("MX (TCP %v): %v", tcp, m.Answers)
		}
	}
	servers.Store(&[]netip.AddrPort{deadAt})
	q := query(t, 7, "example.org.", dnsmessage.TypeTXT, 0)
	if m := reply(t, q, askUDP(t, guest, q, 20*time.Second)); m.RCode != dnsmessage.RCodeServerFailure {
		t.Fatalf("TXT with no nameserver up: %v, want SERVFAIL", m.RCode)
	}
}

// What is not a query gets no answer over UDP, and ends a TCP connection; the server
// goes on answering.
func TestDNSDropsMalformedQueries(t *testing.T) {
	guest, _ := wireDNS(t, &dnsServer{resolver: testResolver(), upstreams: func() []netip.AddrPort { return nil }})
	good := query(t, 1, "web.example.", dnsmessage.TypeA, 0)
	cut := append(slices.Clone(good), 0xff)
	cut[11] = 1 // an additional record, cut short
	response := slices.Clone(good)
	response[2] |= 0x80
	bad := [][]byte{{}, []byte("hello"), good[:len(good)-3], cut, response}
	for _, q := range bad {
		if b := askUDP(t, guest, q, 300*time.Millisecond); b != nil {
			t.Errorf("%x over UDP: answered %x", q, b)
		}
		c := dialTCP(t, guest)
		c.Write(framed(q))
		if b, err := readMsg(c); err == nil {
			t.Errorf("%x over TCP: answered %x", q, b)
		}
	}
	if b := askUDP(t, guest, good, 20*time.Second); b == nil {
		t.Fatal("no answer to a good query after bad ones")
	}
}

// A UDP answer bigger than 512 bytes is cut to its question with TC set, unless the
// query's EDNS0 offers room; over TCP it is whole.
func TestDNSTruncatesOverUDP(t *testing.T) {
	guest, _ := wireDNS(t, &dnsServer{resolver: testResolver(), upstreams: func() []netip.AddrPort { return nil }})
	q := query(t, 2, "many.example.", dnsmessage.TypeA, 0)
	b := askUDP(t, guest, q, 20*time.Second)
	if m := reply(t, q, b); !m.Truncated || len(m.Answers) != 0 || len(b) > 512 {
		t.Fatalf("over UDP: TC %v, %d answers, %d bytes; want TC and none", m.Truncated, len(m.Answers), len(b))
	}
	q = query(t, 3, "many.example.", dnsmessage.TypeA, 4096)
	m := reply(t, q, askUDP(t, guest, q, 20*time.Second))
	if got := aRecords(t, m); m.Truncated || !slices.Equal(got, many) {
		t.Fatalf("over UDP with EDNS0 4096: TC %v, %d answers", m.Truncated, len(got))
	}
	if len(m.Additionals) != 1 || m.Additionals[0].Header.Type != dnsmessage.TypeOPT {
		t.Fatalf("with EDNS0 asked, no OPT answered: %v", m.Additionals)
	}
	q = query(t, 4, "many.example.", dnsmessage.TypeA, 0)
	if m := reply(t, q, askTCP(t, dialTCP(t, guest), q)); m.Truncated || len(m.Answers) != len(many) {
		t.Fatalf("over TCP: TC %v, %d answers", m.Truncated, len(m.Answers))
	}
}

// However many queries the guest sends, no more than dnsLookups are looked up at once,
// and the network closes with lookups still waiting.
func TestDNSBoundsLookups(t *testing.T) {
	r := testResolver()
	r.wait = make(chan struct{})
	guest, n := wireDNS(t, &dnsServer{resolver: r, upstreams: func() []netip.AddrPort { return nil }})
	c, err := gonet.DialUDP(guest, nil, dnsAt(53), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 * dnsLookups {
		c.Write(query(t, uint16(i), "web.example.", dnsmessage.TypeA, 0))
	}
	deadline := time.Now().Add(20 * time.Second)
	for r.inflight.Load() < dnsLookups && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // time for any more to start, were they not bounded
	if most := r.most.Load(); most != dnsLookups {
		t.Fatalf("%d lookups at once, want %d", most, dnsLookups)
	}
	closed := make(chan struct{})
	go func() { n.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(dnsTimeout / 2):
		t.Fatal("Close waits for the lookups in flight")
	}
}

func TestNameservers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(path, []byte("# written by hand\nsearch example.com\nnameserver 127.0.0.53\n"+
		"nameserver   fe80::1%eth0 \n;nameserver 192.0.2.9\nnameserver nowhere\noptions edns0\n"), 0o644)
	got := nameservers(path)
	want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.53:53"), netip.MustParseAddrPort("[fe80::1%eth0]:53")}
	if !slices.Equal(got, want) {
		t.Fatalf("nameservers = %v, want %v", got, want)
	}
	if got := nameservers(filepath.Join(t.TempDir(), "none")); got != nil {
		t.Fatalf("with no resolv.conf: %v", got)
	}
}

// answer, on queries a guest could not send through the network's tests above.
func TestDNSAnswer(t *testing.T) {
	d := &dnsServer{resolver: testResolver(), upstreams: func() []netip.AddrPort { return nil }}
	status := query(t, 5, "web.example.", dnsmessage.TypeA, 0)
	status[2] |= 2 << 3 // opcode STATUS
	two := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 6})
	two.StartQuestions()
	for range 2 {
		two.Question(dnsmessage.Question{Name: dnsmessage.MustNewName("web.example."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
	}
	twoQ, _ := two.Finish()
	if m := reply(t, status, d.answer(t.Context(), status, false)); m.RCode != dnsmessage.RCodeNotImplemented {
		t.Errorf("opcode STATUS: %v, want NOTIMP", m.RCode)
	}
	if b := d.answer(t.Context(), twoQ, false); b != nil {
		t.Errorf("two questions: answered %x", b)
	}
}

// Whatever a guest sends the nameserver, it gets an answer to its query or none, never a
// panic: the answer parses, keeps the ID, and fits in the UDP size offered.
func FuzzDNSQuery(f *testing.F) {
	for i, typ := range []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA, dnsmessage.TypeMX, dnsmessage.TypePTR} {
		for _, name := range []string{"web.example.", "host.example.", "many.example.", "missing.example.", "broken."} {
			f.Add(query(f, uint16(i), name, typ, 0), false)
			f.Add(query(f, uint16(i), name, typ, 1024), true)
		}
	}
	f.Add([]byte{}, false)
	f.Add(bytes.Repeat([]byte{0xc0, 0x0c}, 20), false) // compression pointers in a loop
	d := &dnsServer{resolver: testResolver(), upstreams: func() []netip.AddrPort { return nil }}
	f.Fuzz(func(t *testing.T, q []byte, tcp bool) {
		b := d.answer(t.Context(), q, tcp)
		if b == nil {
			return
		}
		var m dnsmessage.Message
		if err := m.Unpack(b); err != nil {
			t.Fatalf("answer %x to %x does not parse: %v", b, q, err)
		}
		if !m.Response || m.ID != uint16(q[0])<<8|uint16(q[1]) {
			t.Fatalf("answer %+v to %x", m.Header, q)
		}
		var p dnsmessage.Parser
		p.Start(q)
		p.SkipAllQuestions()
		if limit, _, _ := udpLimit(&p); !tcp && len(b) > limit {
			t.Fatalf("UDP answer of %d bytes, over %d", len(b), limit)
		}
	})
}

// The host's resolver, as the guest gets it: localhost, from the host's /etc/hosts, is
// the gateway.
func TestDNSAsksTheHost(t *testing.T) {
	guest, _ := wire(t)
	q := query(t, 8, "localhost.", dnsmessage.TypeA, 0)
	m := reply(t, q, askUDP(t, guest, q, 20*time.Second))
	if got := aRecords(t, m); !slices.Equal(got, []netip.Addr{Gateway}) {
		t.Fatalf("localhost: %v %v, want %v", m.RCode, got, Gateway)
	}
}
