package kernel

import (
	"encoding/binary"
	"sort"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/pithvm/pith/guest/linux"
)

// NETLINK_ROUTE sockets: enough of rtnetlink for a program to list the guest's
// interfaces, addresses and routes, as Go's net.Interfaces and InterfaceAddrs and ip(8)'s
// link, addr and route listings ask. A netlink socket is one of tier 1's AF_UNIX
// datagram sockets (unix.go) whose sends tier 1 answers: the replies to each request are
// queued on it as messages from the kernel (port 0), in datagrams of at most
// netlinkGoodSize bytes as Linux packs a dump, so that a reader with a page-sized buffer
// (Go's syscall.NetlinkRIB) gets each one whole. Nothing is ever announced to multicast
// groups, and a request that would change the network is refused (EOPNOTSUPP): the
// guest's network is what the monitor numbered.

// rtnetlink's numbers (include/uapi/linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h,
// if_arp.h, if.h).
const (
	netlinkRoute = 0   // NETLINK_ROUTE
	solNetlink   = 270 // SOL_NETLINK

	nlmsgHdrLen  = 16
	nlmsgError   = 2
	nlmsgDone    = 3
	nlmRequest   = 0x1
	nlmMulti     = 0x2
	nlmAck       = 0x4
	nlmDump      = 0x300 // NLM_F_ROOT|NLM_F_MATCH: either asks for a dump
	rtmNewLink   = 16
	rtmGetLink   = 18
	rtmNewAddr   = 20
	rtmGetAddr   = 22
	rtmNewRoute  = 24
	rtmGetRoute  = 26
	iflaAddress  = 1
	iflaBrdcast  = 2
	iflaIfname   = 3
	iflaMTU      = 4
	iflaTxqlen   = 13
	iflaOperstat = 16
	ifaAddress   = 1
	ifaLocal     = 2
	ifaLabel     = 3
	ifaFlags     = 8
	rtaDst       = 1
	rtaOif       = 4
	rtaGateway   = 5
	rtaPrefsrc   = 7
	rtaTable     = 15

	arphrdEther    = 1
	arphrdLoopback = 772
	iffUp          = 0x1
	iffBroadcast   = 0x2
	iffLoopback    = 0x8
	iffRunning     = 0x40
	iffMulticast   = 0x1000
	iffLowerUp     = 0x10000
	ifOperUnknown  = 0
	ifOperUp       = 6
	ifaFPermanent  = 0x80
	rtScopeUniv    = 0
	rtScopeLink    = 253
	rtScopeHost    = 254
	rtTableMain    = 254
	rtprotKernel   = 2
	rtprotBoot     = 3
	rtnUnicast     = 1

	// netlinkGoodSize is how much of a dump Linux puts in one datagram (NLMSG_GOODSIZE
	// with 4 KiB pages: a page less the socket buffer's overhead).
	netlinkGoodSize = 3776
)

// nlAddr is a sockaddr_nl naming port.
func nlAddr(port uint32) []byte {
	b := make([]byte, 12)
	binary.LittleEndian.PutUint16(b, afNetlink)
	binary.LittleEndian.PutUint32(b[4:], port)
	return b
}

// nextNetlinkPort is the port the next netlink socket gets after the first, which gets
// the process ID (Linux's autobind: the tgid, then negative numbers).
var nextNetlinkPort = int32(-4096)

// netlinkSocketFD makes a NETLINK_ROUTE socket, bound to a port of its own.
func netlinkSocketFD(t *Task, typ, proto int, flags uint64) int64 {
	if typ != sockRaw && typ != sockDgram {
		return -linux.ESOCKTNOSUPPORT
	}
	if proto != netlinkRoute {
		return -linux.EPROTONOSUPPORT
	}
	s := newUnixSocket(sockDgram)
	unixMu.Lock()
	port := uint32(selfPID.Load())
	if netlinkPortTaken[port] {
		port = uint32(nextNetlinkPort)
		nextNetlinkPort--
	}
	netlinkPortTaken[port] = true
	s.netlink, s.addr = typ, nlAddr(port)
	unixMu.Unlock()
	return t.proc.installUnix(s, flags)
}

var netlinkPortTaken = map[uint32]bool{}

// netlinkPort is the port s is bound to. Under unixMu.
func (s *unixSocket) netlinkPort() uint32 { return binary.LittleEndian.Uint32(s.addr[4:]) }

// readNetlinkAddr checks the sockaddr_nl of n bytes at addr and returns its port.
func readNetlinkAddr(addr, n uint64) (uint32, int64) {
	if n < 12 {
		return 0, -linux.EINVAL
	}
	b := make([]byte, 12)
	if !copyIn(addr, b) {
		return 0, -linux.EFAULT
	}
	if binary.LittleEndian.Uint16(b) != afNetlink {
		return 0, -linux.EINVAL
	}
	return binary.LittleEndian.Uint32(b[4:]), 0
}

// netlinkBind binds to the port asked for, or keeps the one it has for port 0. Groups
// are taken and never sent to.
func netlinkBind(f *file, a [6]uint64) int64 {
	port, e := readNetlinkAddr(a[1], a[2])
	if e != 0 {
		return e
	}
	s := f.unix
	unixMu.Lock()
	defer unixMu.Unlock()
	if port == 0 || port == s.netlinkPort() {
		return 0
	}
	if netlinkPortTaken[port] {
		return -linux.EADDRINUSE
	}
	delete(netlinkPortTaken, s.netlinkPort())
	netlinkPortTaken[port] = true
	s.addr = nlAddr(port)
	return 0
}

// netlinkConnect accepts the kernel (port 0) as the peer; another port has nothing
// listening.
func netlinkConnect(f *file, a [6]uint64) int64 {
	port, e := readNetlinkAddr(a[1], a[2])
	if e != 0 {
		return e
	}
	if port != 0 {
		return -linux.ECONNREFUSED
	}
	return 0
}

// netlinkClosed frees the port of a netlink socket whose last descriptor closed. Under
// unixMu.
func (s *unixSocket) netlinkClosed() { delete(netlinkPortTaken, s.netlinkPort()) }

// netlinkSend answers the requests in what a send carries and queues the replies.
func (s *unixSocket) netlinkSend(bufs [][]byte) int64 {
	data := make([]byte, bufsLen(bufs))
	if !gather(data, bufs, 0) {
		return -linux.EFAULT
	}
	unixMu.Lock()
	port := s.netlinkPort()
	unixMu.Unlock()
	replies := netlinkAnswer(netStack(), data, port)
	unixMu.Lock()
	defer unixMu.Unlock()
	queued := 0
	for _, m := range s.queue {
		queued += len(m.data)
	}
	for _, d := range replies {
		if queued += len(d); queued > s.rcvbuf {
			s.err = linux.ENOBUFS // as Linux when a reader falls behind: the rest is lost
			break
		}
		s.queue = append(s.queue, &unixMsg{data: d, from: nlAddr(0), sender: s})
	}
	s.changed()
	return int64(len(data))
}

// linkNamed is the index of the NIC an IFLA_IFNAME among attrs names, or 0.
func linkNamed(st *stack.Stack, attrs []byte) int32 {
	for len(attrs) >= 4 {
		n := int(binary.LittleEndian.Uint16(attrs))
		if n < 4 || n > len(attrs) {
			break
		}
		if binary.LittleEndian.Uint16(attrs[2:]) == iflaIfname {
			name := string(attrs[4:n])
			for i, c := range []byte(name) {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			ids, info := nics(st)
			for _, id := range ids {
				if nicName(id, info[id]) == name {
					return int32(id)
				}
			}
			return 0
		}
		attrs = attrs[min(nlmsgAlign(n), len(attrs)):]
	}
	return 0
}

// netlinkSetsockopt takes the SOL_NETLINK options programs set, none of which changes
// what this socket does: groups are joined and never hear anything, and extended
// acknowledgments, strict checks and the like shape nothing tier 1 sends.
func netlinkSetsockopt(name, n uint64) int64 {
	if name < 1 || name > 12 { // NETLINK_ADD_MEMBERSHIP to NETLINK_GET_STRICT_CHK
		return -linux.ENOPROTOOPT
	}
	if n < 4 {
		return -linux.EINVAL
	}
	return 0
}

// netlinkAnswer is the kernel's answer to the messages in data, sent from port: the
// datagrams to queue.
func netlinkAnswer(st *stack.Stack, data []byte, port uint32) [][]byte {
	var out [][]byte
	for len(data) >= nlmsgHdrLen {
		n := int(binary.LittleEndian.Uint32(data))
		if n < nlmsgHdrLen || n > len(data) {
			break // as Linux: the rest is not a message
		}
		msg := data[:n]
		data = data[min(nlmsgAlign(n), len(data)):]
		typ := binary.LittleEndian.Uint16(msg[4:])
		flags := binary.LittleEndian.Uint16(msg[6:])
		seq := binary.LittleEndian.Uint32(msg[8:])
		if flags&nlmRequest == 0 || typ < rtmNewLink {
			continue // not a request, or a control message: Linux ignores those
		}
		d := dump{seq: seq, port: port}
		var errno int64
		switch {
		case typ == rtmGetLink && flags&nlmDump != 0:
			d.links(st, 0)
		case typ == rtmGetLink:
			if len(msg) < nlmsgHdrLen+16 {
				errno = -linux.EINVAL
				break
			}
			index := int32(binary.LittleEndian.Uint32(msg[nlmsgHdrLen+4:]))
			if index <= 0 {
				index = linkNamed(st, msg[nlmsgHdrLen+16:]) // ip link show dev NAME
			}
			if index <= 0 || !d.links(st, index) {
				errno = -linux.ENODEV
			}
		case typ == rtmGetAddr && flags&nlmDump != 0:
			d.addrs(st, familyOf(msg))
		case typ == rtmGetRoute && flags&nlmDump != 0:
			d.routes(st, familyOf(msg))
		default:
			errno = -linux.EOPNOTSUPP
		}
		switch {
		case errno != 0:
			out = append(out, nlError(msg, errno, port))
		case flags&nlmDump != 0:
			out = append(out, d.done()...)
		default: // one answer, and an acknowledgment if asked
			out = append(out, d.msgs...)
			if flags&nlmAck != 0 {
				out = append(out, nlError(msg, 0, port))
			}
		}
	}
	return out
}

// familyOf is the address family a dump request asks for (rtgenmsg's, the first byte
// of what follows the header), or AF_UNSPEC.
func familyOf(msg []byte) uint8 {
	if len(msg) > nlmsgHdrLen {
		return msg[nlmsgHdrLen]
	}
	return afUnspec
}

func nlmsgAlign(n int) int { return (n + 3) &^ 3 }

// nlError is an NLMSG_ERROR answering req with errno (0: an acknowledgment), carrying
// req's header as Linux does with NETLINK_CAP_ACK.
func nlError(req []byte, errno int64, port uint32) []byte {
	b := nlHeader(nil, nlmsgError, 0, binary.LittleEndian.Uint32(req[8:]), port)
	b = binary.LittleEndian.AppendUint32(b, uint32(int32(errno)))
	b = append(b, req[:nlmsgHdrLen]...)
	return nlFinish(b, 0)
}

// nlHeader appends a header whose length nlFinish fills in.
func nlHeader(b []byte, typ, flags uint16, seq, port uint32) []byte {
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint16(b, typ)
	b = binary.LittleEndian.AppendUint16(b, flags)
	b = binary.LittleEndian.AppendUint32(b, seq)
	return binary.LittleEndian.AppendUint32(b, port)
}

// nlFinish sets the length of the message starting at start and pads it.
func nlFinish(b []byte, start int) []byte {
	binary.LittleEndian.PutUint32(b[start:], uint32(len(b)-start))
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// rtAttr appends an attribute.
func rtAttr(b []byte, typ uint16, v []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(4+len(v)))
	b = binary.LittleEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// dump collects a reply's messages.
type dump struct {
	seq, port uint32
	msgs      [][]byte
}

// nicName is what the guest calls a NIC: Linux's names for the loopback and the first
// Ethernet interface.
func nicName(id tcpip.NICID, info stack.NICInfo) string {
	switch {
	case info.Name != "":
		return info.Name
	case info.Flags.Loopback:
		return "lo"
	case id == guestNIC:
		return "eth0"
	}
	return "eth" + string(rune('0'+id-guestNIC))
}

// nics is the stack's NICs by index.
func nics(st *stack.Stack) ([]tcpip.NICID, map[tcpip.NICID]stack.NICInfo) {
	info := st.NICInfo()
	ids := make([]tcpip.NICID, 0, len(info))
	for id := range info {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, info
}

// links adds an RTM_NEWLINK for each NIC, or for the one numbered only; it reports
// whether it added any.
func (d *dump) links(st *stack.Stack, only int32) bool {
	ids, info := nics(st)
	found := false
	for _, id := range ids {
		if only != 0 && int32(id) != only {
			continue
		}
		found = true
		in := info[id]
		arp, flags, oper := uint16(arphrdEther), uint32(iffBroadcast|iffMulticast), byte(ifOperUp)
		hw, brd := []byte(in.LinkAddress), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		if in.Flags.Loopback {
			arp, flags, oper = arphrdLoopback, iffLoopback, ifOperUnknown
			hw, brd = make([]byte, 6), make([]byte, 6)
		}
		if in.Flags.Up {
			flags |= iffUp
		}
		if in.Flags.Running {
			flags |= iffRunning | iffLowerUp
		}
		b := nlHeader(nil, rtmNewLink, 0, d.seq, d.port)
		b = append(b, afUnspec, 0)
		b = binary.LittleEndian.AppendUint16(b, arp)
		b = binary.LittleEndian.AppendUint32(b, uint32(id))
		b = binary.LittleEndian.AppendUint32(b, flags)
		b = binary.LittleEndian.AppendUint32(b, 0) // ifi_change
		b = rtAttr(b, iflaIfname, append([]byte(nicName(id, in)), 0))
		b = rtAttr(b, iflaMTU, u32(in.MTU))
		b = rtAttr(b, iflaTxqlen, u32(1000))
		b = rtAttr(b, iflaOperstat, []byte{oper})
		if len(hw) == 6 {
			b = rtAttr(b, iflaAddress, hw)
			b = rtAttr(b, iflaBrdcast, brd)
		}
		d.msgs = append(d.msgs, nlFinish(b, 0))
	}
	return found
}

// addrs adds an RTM_NEWADDR for each address of family (AF_UNSPEC: all) on each NIC.
func (d *dump) addrs(st *stack.Stack, family uint8) {
	ids, info := nics(st)
	for _, want := range []uint8{afInet, afInet6} {
		if family != afUnspec && family != want {
			continue
		}
		for _, id := range ids {
			in := info[id]
			for _, pa := range in.ProtocolAddresses {
				a := pa.AddressWithPrefix
				if pa.Protocol == ipv4.ProtocolNumber && want != afInet || pa.Protocol == ipv6.ProtocolNumber && want != afInet6 ||
					pa.Protocol != ipv4.ProtocolNumber && pa.Protocol != ipv6.ProtocolNumber {
					continue
				}
				scope := byte(rtScopeUniv)
				switch {
				case in.Flags.Loopback:
					scope = rtScopeHost
				case want == afInet6 && a.Address.AsSlice()[0] == 0xfe && a.Address.AsSlice()[1]&0xc0 == 0x80:
					scope = rtScopeLink
				}
				b := nlHeader(nil, rtmNewAddr, 0, d.seq, d.port)
				b = append(b, want, byte(a.PrefixLen), ifaFPermanent, scope)
				b = binary.LittleEndian.AppendUint32(b, uint32(id))
				b = rtAttr(b, ifaAddress, a.Address.AsSlice())
				if want == afInet {
					b = rtAttr(b, ifaLocal, a.Address.AsSlice())
					b = rtAttr(b, ifaLabel, append([]byte(nicName(id, in)), 0))
				}
				b = rtAttr(b, ifaFlags, u32(ifaFPermanent))
				d.msgs = append(d.msgs, nlFinish(b, 0))
			}
		}
	}
}

// routes adds an RTM_NEWROUTE for each route of family (AF_UNSPEC: all) in the stack's
// table, which is the main one.
func (d *dump) routes(st *stack.Stack, family uint8) {
	_, info := nics(st)
	for _, r := range st.GetRouteTable() {
		want := uint8(afInet)
		if r.Destination.ID().Len() == 16 {
			want = afInet6
		}
		if family != afUnspec && family != want {
			continue
		}
		scope, proto := byte(rtScopeUniv), byte(rtprotBoot)
		if r.Gateway.Len() == 0 {
			scope, proto = rtScopeLink, rtprotKernel
		}
		if info[r.NIC].Flags.Loopback {
			scope = rtScopeHost
		}
		b := nlHeader(nil, rtmNewRoute, 0, d.seq, d.port)
		b = append(b, want, byte(r.Destination.Prefix()), 0, 0, rtTableMain, proto, scope, rtnUnicast)
		b = binary.LittleEndian.AppendUint32(b, 0) // rtm_flags
		b = rtAttr(b, rtaTable, u32(rtTableMain))
		if dst := r.Destination.ID(); r.Destination.Prefix() != 0 {
			b = rtAttr(b, rtaDst, dst.AsSlice())
		}
		if r.Gateway.Len() != 0 {
			b = rtAttr(b, rtaGateway, r.Gateway.AsSlice())
		}
		b = rtAttr(b, rtaOif, u32(uint32(r.NIC)))
		if want == afInet && r.Gateway.Len() == 0 {
			for _, pa := range info[r.NIC].ProtocolAddresses {
				if pa.Protocol == ipv4.ProtocolNumber && r.Destination.Contains(pa.AddressWithPrefix.Address) {
					b = rtAttr(b, rtaPrefsrc, pa.AddressWithPrefix.Address.AsSlice())
					break
				}
			}
		}
		d.msgs = append(d.msgs, nlFinish(b, 0))
	}
}

// done packs a dump's messages, marked as parts of one, into datagrams of at most
// netlinkGoodSize bytes, NLMSG_DONE last.
func (d *dump) done() [][]byte {
	end := nlHeader(nil, nlmsgDone, nlmMulti, d.seq, d.port)
	end = nlFinish(binary.LittleEndian.AppendUint32(end, 0), 0)
	var out [][]byte
	var cur []byte
	for _, m := range append(d.msgs, end) {
		binary.LittleEndian.PutUint16(m[6:], binary.LittleEndian.Uint16(m[6:])|nlmMulti)
		if len(cur) > 0 && len(cur)+len(m) > netlinkGoodSize {
			out, cur = append(out, cur), nil
		}
		cur = append(cur, m...)
	}
	return append(out, cur)
}
