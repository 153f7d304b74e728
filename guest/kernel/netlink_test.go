package kernel

import (
	"encoding/binary"
	"syscall"
	"testing"
	"unsafe"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/loopback"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// testStack has the guest's loopback and a NIC with extra IPv4 addresses.
func testStack(t *testing.T, extra int) *stack.Stack {
	t.Helper()
	s := stack.New(stack.Options{NetworkProtocols: []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol}})
	if err := s.CreateNIC(loopbackNIC, loopback.New()); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateNIC(guestNIC, channel.New(1, 1500, tcpip.LinkAddress("\x02\x00\x00\x00\x00\x01"))); err != nil {
		t.Fatal(err)
	}
	add := func(nic tcpip.NICID, proto tcpip.NetworkProtocolNumber, a tcpip.AddressWithPrefix) {
		if err := s.AddProtocolAddress(nic, tcpip.ProtocolAddress{Protocol: proto, AddressWithPrefix: a}, stack.AddressProperties{}); err != nil {
			t.Fatal(err)
		}
	}
	add(loopbackNIC, ipv4.ProtocolNumber, tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4([4]byte{127, 0, 0, 1}), PrefixLen: 8})
	add(loopbackNIC, ipv6.ProtocolNumber, tcpip.AddrFrom16([16]byte{15: 1}).WithPrefix())
	for i := 0; i <= extra; i++ {
		add(guestNIC, ipv4.ProtocolNumber, tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i + 2)}), PrefixLen: 24})
	}
	sub, _ := tcpip.NewSubnet(tcpip.AddrFrom4([4]byte{10, 0, 0, 0}), tcpip.MaskFromBytes([]byte{255, 255, 255, 0}))
	s.SetRouteTable([]tcpip.Route{{Destination: sub, NIC: guestNIC}, {Destination: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4([4]byte{}), PrefixLen: 0}.Subnet(), Gateway: tcpip.AddrFrom4([4]byte{10, 0, 0, 1}), NIC: guestNIC}})
	return s
}

// request is a netlink request as Go's syscall.NetlinkRIB writes it, plus an index.
func request(typ, flags uint16, seq uint32, family uint8, index int32) []byte {
	b := nlHeader(nil, typ, flags, seq, 0)
	b = append(b, family, 0, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(index))
	b = append(b, make([]byte, 8)...)
	return nlFinish(b, 0)
}

// parse reads datagrams as a program does, each at most a page, and returns their
// messages.
func parse(t *testing.T, dgrams [][]byte) []syscall.NetlinkMessage {
	t.Helper()
	var all []syscall.NetlinkMessage
	for _, d := range dgrams {
		if len(d) > netlinkGoodSize {
			t.Errorf("a datagram of %d bytes: a reader's page would cut it", len(d))
		}
		ms, err := syscall.ParseNetlinkMessage(d)
		if err != nil {
			t.Fatalf("%x: %v", d, err)
		}
		all = append(all, ms...)
	}
	return all
}

func TestNetlinkDumpsLinksAsGoReadsThem(t *testing.T) {
	ms := parse(t, netlinkAnswer(testStack(t, 0), request(syscall.RTM_GETLINK, syscall.NLM_F_REQUEST|syscall.NLM_F_DUMP, 7, syscall.AF_UNSPEC, 0), 42))
	if len(ms) != 3 || ms[2].Header.Type != syscall.NLMSG_DONE {
		t.Fatalf("%d messages, want two links and NLMSG_DONE: %+v", len(ms), ms)
	}
	for i, want := range []struct {
		name  string
		index int32
		flags uint32
		hw    int
	}{{"lo", 1, syscall.IFF_UP | syscall.IFF_LOOPBACK | syscall.IFF_RUNNING, 6}, {"eth0", 2, syscall.IFF_UP | syscall.IFF_BROADCAST | syscall.IFF_MULTICAST | syscall.IFF_RUNNING, 6}} {
		m := ms[i]
		if m.Header.Type != syscall.RTM_NEWLINK || m.Header.Seq != 7 || m.Header.Pid != 42 || m.Header.Flags&syscall.NLM_F_MULTI == 0 {
			t.Errorf("link %d header %+v", i, m.Header)
		}
		ifi := (*syscall.IfInfomsg)(unsafe.Pointer(&m.Data[0]))
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			t.Fatal(err)
		}
		got := map[uint16][]byte{}
		for _, a := range attrs {
			got[a.Attr.Type] = a.Value
		}
		if ifi.Index != want.index || ifi.Flags&0xffff != want.flags || string(got[syscall.IFLA_IFNAME]) != want.name+"\x00" || len(got[syscall.IFLA_ADDRESS]) != want.hw {
			t.Errorf("link %d: index %d flags %#x name %q address %x", i, ifi.Index, ifi.Flags, got[syscall.IFLA_IFNAME], got[syscall.IFLA_ADDRESS])
		}
		if binary.LittleEndian.Uint32(got[syscall.IFLA_MTU]) == 0 {
			t.Errorf("link %d: no MTU", i)
		}
	}
}

func TestNetlinkDumpsAddressesByFamilyInPages(t *testing.T) {
	st := testStack(t, 200) // more than a page of addresses
	count := func(family uint8) (v4, v6 int) {
		ms := parse(t, netlinkAnswer(st, request(syscall.RTM_GETADDR, syscall.NLM_F_REQUEST|syscall.NLM_F_DUMP, 1, family, 0), 42))
		if ms[len(ms)-1].Header.Type != syscall.NLMSG_DONE {
			t.Fatalf("family %d: the dump does not end with NLMSG_DONE", family)
		}
		for _, m := range ms[:len(ms)-1] {
			ifa := (*syscall.IfAddrmsg)(unsafe.Pointer(&m.Data[0]))
			attrs, _ := syscall.ParseNetlinkRouteAttr(&m)
			if m.Header.Type != syscall.RTM_NEWADDR || len(attrs) == 0 || attrs[0].Attr.Type != syscall.IFA_ADDRESS {
				t.Fatalf("message %+v, attributes %+v", m.Header, attrs)
			}
			switch ifa.Family {
			case syscall.AF_INET:
				v4++
				if len(attrs[0].Value) != 4 || ifa.Index == 2 && ifa.Prefixlen != 24 {
					t.Errorf("IPv4 address %x/%d on %d", attrs[0].Value, ifa.Prefixlen, ifa.Index)
				}
			case syscall.AF_INET6:
				v6++
				if ifa.Scope != rtScopeHost || ifa.Prefixlen != 128 {
					t.Errorf("::1: scope %d, prefix %d", ifa.Scope, ifa.Prefixlen)
				}
			}
		}
		return v4, v6
	}
	if v4, v6 := count(syscall.AF_UNSPEC); v4 != 202 || v6 != 1 {
		t.Errorf("all: %d IPv4 and %d IPv6 addresses, want 202 and 1", v4, v6)
	}
	if v4, v6 := count(syscall.AF_INET6); v4 != 0 || v6 != 1 {
		t.Errorf("AF_INET6: %d IPv4 and %d IPv6 addresses", v4, v6)
	}
}

func TestNetlinkRoutesOneLinkAndErrors(t *testing.T) {
	st := testStack(t, 0)
	ms := parse(t, netlinkAnswer(st, request(syscall.RTM_GETROUTE, syscall.NLM_F_REQUEST|syscall.NLM_F_DUMP, 3, syscall.AF_INET, 0), 42))
	if len(ms) != 3 {
		t.Fatalf("%d messages, want two routes and NLMSG_DONE", len(ms))
	}
	gw := false
	for _, m := range ms[:2] {
		attrs, _ := syscall.ParseNetlinkRouteAttr(&m)
		for _, a := range attrs {
			gw = gw || a.Attr.Type == syscall.RTA_GATEWAY && string(a.Value) == "\x0a\x00\x00\x01"
		}
	}
	if !gw {
		t.Error("no route through the gateway 10.0.0.1")
	}

	// One link by index, acknowledged; then one that is not there, a request nothing
	// serves, and a message that is not a request (ignored).
	var req []byte
	req = append(req, request(syscall.RTM_GETLINK, syscall.NLM_F_REQUEST|syscall.NLM_F_ACK, 10, 0, 2)...)
	req = append(req, request(syscall.RTM_GETLINK, syscall.NLM_F_REQUEST, 11, 0, 99)...)
	req = append(req, request(syscall.RTM_NEWADDR, syscall.NLM_F_REQUEST, 12, 0, 2)...)
	req = append(req, request(syscall.RTM_GETLINK, 0, 13, 0, 2)...)
	ms = parse(t, netlinkAnswer(st, req, 42))
	errno := func(m syscall.NetlinkMessage) int32 { return int32(binary.LittleEndian.Uint32(m.Data)) }
	if len(ms) != 4 || ms[0].Header.Type != syscall.RTM_NEWLINK || ms[0].Header.Seq != 10 ||
		ms[1].Header.Type != syscall.NLMSG_ERROR || errno(ms[1]) != 0 ||
		ms[2].Header.Seq != 11 || errno(ms[2]) != -int32(syscall.ENODEV) ||
		ms[3].Header.Seq != 12 || errno(ms[3]) != -int32(syscall.EOPNOTSUPP) {
		t.Fatalf("answers: %+v", ms)
	}
	// A link by name (ip link show dev eth0), and a dump asked with NLM_F_ROOT alone.
	byName := nlHeader(nil, syscall.RTM_GETLINK, syscall.NLM_F_REQUEST, 20, 0)
	byName = append(byName, make([]byte, 16)...)
	byName = nlFinish(rtAttr(byName, syscall.IFLA_IFNAME, []byte("eth0\x00")), 0)
	byName = append(byName, request(syscall.RTM_GETLINK, syscall.NLM_F_REQUEST|syscall.NLM_F_ROOT, 21, 0, 0)...)
	ms = parse(t, netlinkAnswer(st, byName, 42))
	if len(ms) != 4 || ms[0].Header.Type != syscall.RTM_NEWLINK || (*syscall.IfInfomsg)(unsafe.Pointer(&ms[0].Data[0])).Index != 2 ||
		ms[1].Header.Seq != 21 || ms[3].Header.Type != syscall.NLMSG_DONE {
		t.Fatalf("by name, then a NLM_F_ROOT dump: %+v", ms)
	}
	if got := netlinkAnswer(st, []byte{200, 0, 0, 0, 18, 0, 1, 3}, 42); len(got) != 0 {
		t.Errorf("a message longer than what was sent got %d answers", len(got))
	}
}
