package kernel

import (
	"bytes"
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
	"github.com/pithvm/pith/guest/x86"
)

// socket is an app socket: a netstack endpoint, and a readiness descriptor in tier 0
// that carries its events to the app's epoll. The endpoint's callbacks add events there
// as they happen; after each call that may consume some (a read, an accept), tier 1
// computes the endpoint's readiness again and sets it, so that an edge-triggered watch
// sees the next arrival as an edge.
type socket struct {
	family, typ, proto int
	ep                 tcpip.Endpoint
	wq                 *waiter.Queue
	entry              waiter.Entry
	readyFD            uintptr // tier 0's readiness descriptor

	refs  atomic.Int32 // descriptors (dup) sharing the socket
	ready readiness

	// SO_RCVTIMEO and SO_SNDTIMEO: how long a blocking receive (accept) or send
	// (connect) waits before EAGAIN (EINPROGRESS); 0 waits for ever.
	rcvTimeout, sndTimeout atomic.Int64
}

const socketEvents = waiter.ReadableEvents | waiter.WritableEvents | waiter.EventErr | waiter.EventHUp | waiter.EventRdHUp | waiter.EventPri

func newSocket(family, typ, proto int, ep tcpip.Endpoint, wq *waiter.Queue) (*socket, int64) {
	fd, _, e := syscall.RawSyscall(abi.SysPithReadyFD, 0, 0, 0)
	if e != 0 {
		ep.Close()
		return nil, -int64(e)
	}
	s := &socket{family: family, typ: typ, proto: proto, ep: ep, wq: wq, readyFD: fd}
	s.refs.Store(1)
	s.ready.tell = func(events uint32, or bool) {
		var o uintptr
		if or {
			o = 1
		}
		syscall.RawSyscall(abi.SysPithSetReady, fd, uintptr(events), o)
	}
	s.ready.lower, s.ready.raise = readyTable(fd)
	s.entry = waiter.NewFunctionEntry(socketEvents, func(m waiter.EventMask) { s.ready.arrived(uint32(m)) })
	wq.EventRegister(&s.entry)
	s.update()
	return s, 0
}

// update gives tier 0 the endpoint's readiness now.
func (s *socket) update() {
	s.ready.update(func() uint32 { return uint32(s.ep.Readiness(socketEvents)) })
}

// readiness keeps tier 0's events of one readiness descriptor (SysPithSetReady, through
// tell) in step with an endpoint's, telling tier 0 only of changes: netstack's callbacks
// add events (arrived), and after a call that may consume some, update sets them all.
// Tier 0 makes an edge for the app's epoll only of an event it did not have, so an event
// tier 0 lacks while level says it has it is an edge lost for good: a writer waiting for
// EPOLLOUT waits for ever (a TCP echo over loopback hung so in the nested CI).
type readiness struct {
	tell  func(events uint32, or bool)
	lower func(events uint32) // sets tier 0's events to fewer, without a call; nil: tell
	raise func(events uint32) // adds events and their edges, calling only to wake; nil: tell
	level atomic.Uint32       // the events tier 0 has, as last told
	gen   atomic.Uint32       // counts callbacks, so that update sees one it raced with
	mu    sync.Mutex          // serialises update
	// closed is set, under mu, before the descriptor closes: a call still under way must
	// not write to a number tier 0 may have given to another socket.
	closed bool
}

// arrived runs in netstack, with the endpoint's locks held: it must not call the
// endpoint. It adds the events to tier 0's, where they were not there already.
func (r *readiness) arrived(bits uint32) {
	r.gen.Add(1)
	if old := r.level.Or(bits); old&bits != bits {
		if r.raise != nil {
			r.raise(bits)
		} else {
			r.tell(bits, true)
		}
	}
}

// update sets tier 0's events to now(), again if a callback ran meanwhile. The second
// time it tells tier 0 even if level already holds the events: the callback may have
// found them in level (update had not lowered it yet) and told nothing, after which
// update's own telling lowered them in tier 0.
func (r *readiness) update(now func() uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	raced := false
	for {
		g := r.gen.Load()
		events := now()
		prev := r.level.Swap(events)
		switch {
		case prev == events && !raced:
		case events&^prev == 0 && !raced && r.lower != nil:
			// Only fewer events (a read took the data): no edge, no one to wake.
			r.lower(events)
		default:
			r.tell(events, false)
		}
		if r.gen.Load() == g {
			return
		}
		raced = true
	}
}

// readyTable gives readiness.lower and raise for readiness descriptor fd: atomic
// operations on tier 0's abi.ReadyTable (BootInfo.ReadyTable), with a call only to wake
// a thread that may sleep in epoll on the descriptor; nils where tier 0 has no table.
func readyTable(fd uintptr) (lower, raise func(events uint32)) {
	addr := bootInfo().ReadyTable
	if addr == 0 || fd >= abi.MaxReadyFDs {
		return nil, nil
	}
	table := (*abi.ReadyTable)(x86.Pointer(uintptr(addr)))
	level, edges, waiting := &table.Levels[fd], &table.Edges[fd], &table.Waiting[fd]
	lower = func(events uint32) { atomic.StoreUint32(level, events) }
	raise = func(events uint32) {
		atomic.OrUint32(level, events)
		atomic.OrUint32(edges, events)
		atomic.StoreUint32(&table.Pending, 1) // sequentially consistent: before the load below
		if atomic.LoadUint32(waiting) != 0 {
			syscall.RawSyscall(abi.SysPithSetReady, fd, 0, abi.ReadyWake)
		}
	}
	return lower, raise
}

func (s *socket) release() {
	if s.refs.Add(-1) != 0 {
		return
	}
	s.wq.EventUnregister(&s.entry)
	s.ep.Close()
	s.ready.mu.Lock()
	s.ready.closed = true
	s.ready.mu.Unlock()
	syscall.RawSyscall(syscall.SYS_CLOSE, s.readyFD, 0, 0)
}

// block runs op until it stops answering EAGAIN, waiting for mask between tries, unless
// nonblock, for at most timeout (nanoseconds, 0 for ever: then EAGAIN). A signal for t
// ends the wait with errRestart, or EINTR where a timeout was set, as Linux has it.
func (s *socket) block(t *Task, mask waiter.EventMask, nonblock bool, timeout int64, op func() int64) int64 {
	r := op()
	if r != -linux.EAGAIN || nonblock {
		return r
	}
	e, ch := waiter.NewChannelEntry(mask | waiter.EventErr | waiter.EventHUp)
	s.wq.EventRegister(&e)
	defer s.wq.EventUnregister(&e)
	var expired <-chan time.Time
	if timeout > 0 {
		timer := time.NewTimer(time.Duration(timeout))
		defer timer.Stop()
		expired = timer.C
	}
	for {
		if r = op(); r != -linux.EAGAIN {
			return r
		}
		switch t.waitChan(ch, nil, expired) {
		case waitSignalled:
			if timeout > 0 {
				return -linux.EINTR
			}
			return -errRestart
		case waitExpired:
			return -linux.EAGAIN
		}
	}
}

// sockFD is fd's socket, or the errno Linux gives for it.
func sockFD(t *Task, fd uint64) (*file, *socket, int64) {
	f := t.proc.fd(fd)
	if f == nil {
		return nil, nil, -linux.EBADF
	}
	if f.kind != kindSocket {
		return nil, nil, -linux.ENOTSOCK
	}
	return f, f.sock, 0
}

func (p *Process) installSocket(s *socket, flags uint64) int64 {
	f := &file{kind: kindSocket, sock: s, flags: syscall.O_RDWR | flags&sockNonblock, cloexec: flags&sockCloexec != 0}
	fd := p.installFD(f)
	if fd < 0 {
		s.release()
	}
	return fd
}

func sysSocket(t *Task, a [6]uint64) int64 {
	family, typ, proto := int(a[0]), int(a[1]&0xf), int(a[2])
	if a[1]&^(0xf|sockNonblock|sockCloexec) != 0 {
		return -linux.EINVAL
	}
	var netProto tcpip.NetworkProtocolNumber
	switch family {
	case afInet:
		netProto = ipv4.ProtocolNumber
	case afInet6:
		netProto = ipv6.ProtocolNumber
	case afUnix:
		return unixSocketFD(t, typ, proto, a[1])
	case afNetlink:
		return netlinkSocketFD(t, typ, proto, a[1])
	default:
		return -linux.EAFNOSUPPORT
	}
	var trans tcpip.TransportProtocolNumber
	switch {
	case typ == sockStream && (proto == 0 || proto == ipprotoTCP):
		trans, proto = tcp.ProtocolNumber, ipprotoTCP
	case typ == sockDgram && (proto == 0 || proto == ipprotoUDP):
		trans, proto = udp.ProtocolNumber, ipprotoUDP
	case typ == sockDgram && family == afInet && proto == ipprotoICMP:
		trans = icmp.ProtocolNumber4
	case typ == sockDgram && family == afInet6 && proto == ipprotoICMPv6:
		trans = icmp.ProtocolNumber6
	case typ == sockStream || typ == sockDgram:
		return -linux.EPROTONOSUPPORT
	default:
		return -linux.ESOCKTNOSUPPORT // raw and packet sockets are not served
	}
	wq := &waiter.Queue{}
	ep, err := netStack().NewEndpoint(trans, netProto, wq)
	if err != nil {
		return netErrno(err)
	}
	s, e := newSocket(family, typ, proto, ep, wq)
	if e != 0 {
		return e
	}
	return t.proc.installSocket(s, a[1])
}

func sysBind(t *Task, a [6]uint64) int64 {
	_, s, e := sockFD(t, a[0])
	if e != 0 {
		return e
	}
	fa, e := readSockaddr(a[1], a[2], s.family)
	if e != 0 {
		return e
	}
	return netErrno(s.ep.Bind(fa))
}

func sysListen(t *Task, a [6]uint64) int64 {
	_, s, e := sockFD(t, a[0])
	if e != 0 {
		return e
	}
	if s.typ != sockStream {
		return -linux.EOPNOTSUPP
	}
	backlog := min(max(int(int32(a[1])), 0), 4096) // Linux's somaxconn
	defer s.update()
	return netErrno(s.ep.Listen(backlog))
}

func sysAccept4(t *Task, a [6]uint64) int64 {
	f, s, e := sockFD(t, a[0])
	if e != 0 {
		return e
	}
	if a[3]&^(sockNonblock|sockCloexec) != 0 {
		return -linux.EINVAL
	}
	var c *socket
	r := s.block(t, waiter.ReadableEvents, f.flags&syscall.O_NONBLOCK != 0, s.rcvTimeout.Load(), func() int64 {
		var peer tcpip.FullAddress
		ep, wq, err := s.ep.Accept(&peer)
		if err != nil {
			if _, ok := err.(*tcpip.ErrInvalidEndpointState); ok {
				return -linux.EINVAL // not listening
			}
			return netErrno(err)
		}
		if c, e = newSocket(s.family, s.typ, s.proto, ep, wq); e != 0 {
			return e
		}
		if e := putSockaddr(a[1], a[2], sockaddr(peer, s.family)); e != 0 {
			c.release()
			return e
		}
		return 0
	})
	s.update()
	if r != 0 {
		return r
	}
	return t.proc.installSocket(c, a[3])
}

func sysConnect(t *Task, a [6]uint64) int64 {
	f, s, e := sockFD(t, a[0])
	if e != 0 {
		return e
	}
	defer s.update()
	if s.typ == sockDgram && a[2] >= 2 {
		if fam, ok := getApp[uint16](a[1]); ok && fam == afUnspec {
			s.ep.Disconnect()
			return 0
		}
	}
	fa, e := readSockaddr(a[1], a[2], s.family)
	if e != 0 {
		return e
	}
	err := s.ep.Connect(fa)
	if _, started := err.(*tcpip.ErrConnectStarted); !started {
		return netErrno(err)
	}
	if f.flags&syscall.O_NONBLOCK != 0 {
		return -linux.EINPROGRESS
	}
	switch s.block(t, waiter.WritableEvents, false, s.sndTimeout.Load(), func() int64 {
		if s.ep.Readiness(waiter.WritableEvents|waiter.EventErr|waiter.EventHUp) == 0 {
			return -linux.EAGAIN
		}
		return 0
	}) {
	case -errRestart, -linux.EINTR:
		return -linux.EINTR // never restarted: the connection goes on being made, as POSIX has it
	case -linux.EAGAIN:
		return -linux.EINPROGRESS // SO_SNDTIMEO ran out; the connection goes on being made
	}
	return netErrno(s.ep.LastError())
}

func sysGetsockname(t *Task, a [6]uint64) int64 { return sockName(t, a, false) }
func sysGetpeername(t *Task, a [6]uint64) int64 { return sockName(t, a, true) }

func sockName(t *Task, a [6]uint64, peer bool) int64 {
	_, s, e := sockFD(t, a[0])
	if e != 0 {
		return e
	}
	get := s.ep.GetLocalAddress
	if peer {
		get = s.ep.GetRemoteAddress
	}
	fa, err := get()
	if err != nil {
		return netErrno(err)
	}
	if a[1] == 0 {
		return -linux.EFAULT
	}
	return putSockaddr(a[1], a[2], sockaddr(fa, s.family))
}

func sysShutdown(t *Task, a [6]uint64) int64 {
	_, s, e := sockFD(t, a[0])
	if e != 0 {
		return e
	}
	var flags tcpip.ShutdownFlags
	switch a[1] {
	case 0:
		flags = tcpip.ShutdownRead
	case 1:
		flags = tcpip.ShutdownWrite
	case 2:
		flags = tcpip.ShutdownRead | tcpip.ShutdownWrite
	default:
		return -linux.EINVAL
	}
	defer s.update()
	return netErrno(s.ep.Shutdown(flags))
}

// Message flags (include/linux/socket.h).
const (
	msgOOB      = 0x1
	msgPeek     = 0x2
	msgTrunc    = 0x20
	msgDontwait = 0x40
	msgWaitall  = 0x100
	msgNosignal = 0x4000
)

// send writes the app buffers bufs as one message (to, if not nil).
func (s *socket) send(t *Task, f *file, bufs [][]byte, flags uint64, to *tcpip.FullAddress) int64 {
	var msg []byte
	if len(bufs) == 1 {
		msg = bufs[0]
	} else {
		msg = bytes.Join(bufs, nil)
	}
	nonblock := f.flags&syscall.O_NONBLOCK != 0 || flags&msgDontwait != 0
	sent := int64(0)
	r := s.block(t, waiter.WritableEvents, nonblock, s.sndTimeout.Load(), func() int64 {
		for {
			var rd bytes.Reader
			rd.Reset(msg[sent:])
			n, err := s.ep.Write(&rd, tcpip.WriteOptions{To: to})
			sent += n
			if err != nil {
				if sent > 0 && s.typ == sockStream {
					return 0 // a short write
				}
				return netErrno(err)
			}
			if s.typ != sockStream || sent == int64(len(msg)) {
				return 0
			}
		}
	})
	s.update()
	if (r == -linux.EAGAIN || r == -errRestart || r == -linux.EINTR) && sent > 0 {
		r = 0
	}
	if r < 0 {
		if r == -linux.EPIPE && flags&msgNosignal == 0 {
			t.proc.post(t, sigPIPE)
		}
		return r
	}
	return sent
}

// appWriter scatters what netstack reads into app buffers.
type appWriter struct {
	bufs [][]byte
	n    int
}

func (w *appWriter) Write(p []byte) (int, error) {
	done := 0
	for len(p) > 0 && len(w.bufs) > 0 {
		c := copy(w.bufs[0], p)
		p, done, w.n = p[c:], done+c, w.n+c
		if w.bufs[0] = w.bufs[0][c:]; len(w.bufs[0]) == 0 {
			w.bufs = w.bufs[1:]
		}
	}
	if len(p) > 0 {
		return done, io.ErrShortWrite
	}
	return done, nil
}

// recv reads one message (a datagram) or what a stream has into bufs, and where from.
func (s *socket) recv(t *Task, f *file, bufs [][]byte, flags uint64) (n int64, from tcpip.FullAddress, truncated bool) {
	nonblock := f.flags&syscall.O_NONBLOCK != 0 || flags&msgDontwait != 0
	if flags&msgOOB != 0 {
		return -linux.EINVAL, from, false
	}
	w := &appWriter{bufs: bufs}
	// Linux takes a datagram into no room at all and answers 0 (truncated); netstack
	// takes a write of nothing for a bad buffer, so it gets a byte that is thrown away.
	noRoom := s.typ == sockDgram && bufsLen(bufs) == 0
	if noRoom {
		w.bufs = [][]byte{make([]byte, 1)}
	}
	r := s.block(t, waiter.ReadableEvents, nonblock, s.rcvTimeout.Load(), func() int64 {
		res, err := s.ep.Read(w, tcpip.ReadOptions{Peek: flags&msgPeek != 0, NeedRemoteAddr: s.typ == sockDgram})
		if err == nil && noRoom {
			res.Count = 0
		}
		switch err.(type) {
		case nil:
			from, truncated = res.RemoteAddr, res.Total > res.Count
			if s.typ == sockDgram && flags&msgTrunc != 0 {
				return int64(res.Total)
			}
			return int64(res.Count)
		case *tcpip.ErrClosedForReceive:
			return 0 // end of stream
		case *tcpip.ErrNotConnected:
			if s.typ == sockStream {
				return -linux.ENOTCONN
			}
		}
		return netErrno(err)
	})
	s.update()
	return r, from, truncated
}

// appBufs is the app memory of an iovec array, or EFAULT.
func appBufs(iov, cnt uint64) ([][]byte, int64) {
	vecs, e := appIovecs(iov, cnt)
	if e != 0 {
		return nil, e
	}
	bufs := make([][]byte, 0, cnt)
	for _, v := range vecs {
		b, ok := appSlice(v[0], v[1])
		if !ok {
			return nil, -linux.EFAULT
		}
		bufs = append(bufs, b)
	}
	return bufs, 0
}

func sysSendto(t *Task, a [6]uint64) int64 {
	f, s, e := sockFD(t, a[0])
	if e != 0 {
		return e
	}
	b, ok := appSlice(a[1], a[2])
	if !ok {
		return -linux.EFAULT
	}
	var to *tcpip.FullAddress
	if a[4] != 0 && s.typ == sockDgram {
		fa, e := readSockaddr(a[4], a[5], s.family)
		if e != 0 {
			return e
		}
		to = &fa
	}
	return s.send(t, f, [][]byte{b}, a[3], to)
}

func sysRecvfrom(t *Task, a [6]uint64) int64 {
	f, s, e := sockFD(t, a[0])
	if e != 0 {
		return e
	}
	b, ok := appSlice(a[1], a[2])
	if !ok {
		return -linux.EFAULT
	}
	n, from, _ := s.recv(t, f, [][]byte{b}, a[3])
	if n >= 0 && a[4] != 0 && s.typ == sockDgram {
		if e := putSockaddr(a[4], a[5], sockaddr(from, s.family)); e != 0 {
			return e
		}
	}
	return n
}

// msghdr is struct msghdr.
type msghdr struct {
	name       uint64
	namelen    uint32
	_          uint32
	iov        uint64
	iovlen     uint64
	control    uint64
	controllen uint64
	flags      int32
	_          int32
}

func sysSendmsg(t *Task, a [6]uint64) int64 {
	f, s, e := sockFD(t, a[0])
	if e != 0 {
		return e
	}
	m, ok := getApp[msghdr](a[1])
	if !ok {
		return -linux.EFAULT
	}
	bufs, e := appBufs(m.iov, m.iovlen)
	if e != 0 {
		return e
	}
	var to *tcpip.FullAddress
	if m.name != 0 && s.typ == sockDgram {
		fa, e := readSockaddr(m.name, uint64(m.namelen), s.family)
		if e != 0 {
			return e
		}
		to = &fa
	}
	return s.send(t, f, bufs, a[2], to)
}

func sysRecvmsg(t *Task, a [6]uint64) int64 {
	f, s, e := sockFD(t, a[0])
	if e != 0 {
		return e
	}
	m, ok := getApp[msghdr](a[1])
	if !ok {
		return -linux.EFAULT
	}
	bufs, e := appBufs(m.iov, m.iovlen)
	if e != 0 {
		return e
	}
	n, from, truncated := s.recv(t, f, bufs, a[2])
	if n < 0 {
		return n
	}
	if m.name != 0 {
		b := sockaddr(from, s.family)
		if s.typ == sockStream {
			b = nil
		}
		if !copyOut(m.name, b[:min(int(m.namelen), len(b))]) {
			return -linux.EFAULT
		}
		m.namelen = uint32(len(b))
	}
	m.controllen = 0 // no ancillary data is served
	m.flags = 0
	if truncated {
		m.flags = msgTrunc
	}
	if !putApp(a[1], m) {
		return -linux.EFAULT
	}
	return n
}

// Socket option levels and names (include/uapi/asm-generic/socket.h, linux/tcp.h, in6.h).
const (
	solSocket   = 1
	solIP       = 0
	solTCP      = 6
	solIPv6     = 41
	soReuseaddr = 2
	soType      = 3
	soError     = 4
	soBroadcast = 6
	soSndbuf    = 7
	soRcvbuf    = 8
	soKeepalive = 9
	soLinger    = 13
	soReuseport = 15
	soRcvtimeo  = 20 // SO_RCVTIMEO_OLD: a struct timeval, as glibc's SO_RCVTIMEO on x86-64
	soSndtimeo  = 21
	soRcvtimeo2 = 66 // SO_RCVTIMEO_NEW: a struct __kernel_sock_timeval, the same 16 bytes here
	soSndtimeo2 = 67
	soProtocol  = 38
	soDomain    = 39
	tcpNodelay  = 1
	tcpKeepidle = 4
	tcpKeepintv = 5
	tcpKeepcnt  = 6
	ipTTL       = 2
	ipv6Hops    = 16 // IPV6_UNICAST_HOPS
	ipv6V6only  = 26

	// defaultTTL is what IP_TTL and IPV6_UNICAST_HOPS read before they are set: Linux's
	// net.ipv4.ip_default_ttl and net.ipv6.conf.all.hop_limit.
	defaultTTL = 64
)

func sysSetsockopt(t *Task, a [6]uint64) int64 {
	_, s, e := sockFD(t, a[0])
	if e != 0 {
		return e
	}
	level, name, val, n := a[1], a[2], a[3], a[4]
	if level == solSocket && name == soLinger {
		var l [2]int32
		if n < 8 || !copyIn(val, unsafe.Slice((*byte)(unsafe.Pointer(&l)), 8)) {
			return -linux.EINVAL
		}
		s.ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: l[0] != 0, Timeout: time.Duration(l[1]) * time.Second})
		return 0
	}
	if level == solSocket {
		switch name {
		case soRcvtimeo, soRcvtimeo2:
			return setTimeout(&s.rcvTimeout, val, n)
		case soSndtimeo, soSndtimeo2:
			return setTimeout(&s.sndTimeout, val, n)
		}
	}
	if n < 4 {
		return -linux.EINVAL
	}
	v32, ok := getApp[int32](val)
	if !ok {
		return -linux.EFAULT
	}
	v, on := int(v32), v32 != 0
	o := s.ep.SocketOptions()
	switch {
	case level == solSocket && name == soReuseaddr:
		o.SetReuseAddress(on)
	case level == solSocket && name == soReuseport:
		o.SetReusePort(on)
	case level == solSocket && name == soKeepalive:
		o.SetKeepAlive(on)
	case level == solSocket && name == soBroadcast:
		o.SetBroadcast(on)
	case level == solSocket && name == soSndbuf:
		o.SetSendBufferSize(int64(max(v, 0))*2, true) // Linux doubles it, and reports the double
	case level == solSocket && name == soRcvbuf:
		o.SetReceiveBufferSize(int64(max(v, 0))*2, true)
	case level == solTCP && name == tcpNodelay && s.typ == sockStream:
		o.SetDelayOption(!on)
	case level == solTCP && (name == tcpKeepidle || name == tcpKeepintv) && s.typ == sockStream:
		if v < 1 {
			return -linux.EINVAL
		}
		var opt tcpip.SettableSocketOption
		if name == tcpKeepidle {
			idle := tcpip.KeepaliveIdleOption(time.Duration(v) * time.Second)
			opt = &idle
		} else {
			intv := tcpip.KeepaliveIntervalOption(time.Duration(v) * time.Second)
			opt = &intv
		}
		return netErrno(s.ep.SetSockOpt(opt))
	case level == solTCP && name == tcpKeepcnt && s.typ == sockStream:
		return netErrno(s.ep.SetSockOptInt(tcpip.KeepaliveCountOption, v))
	case level == solIPv6 && name == ipv6V6only && s.family == afInet6:
		o.SetV6Only(on)
	case level == solIP && name == ipTTL:
		if v == -1 {
			v = tcpip.UseDefaultIPv4TTL
		} else if v < 1 || v > 255 {
			return -linux.EINVAL
		}
		return netErrno(s.ep.SetSockOptInt(tcpip.IPv4TTLOption, v))
	case level == solIPv6 && name == ipv6Hops && s.family == afInet6:
		if v < -1 || v > 255 {
			return -linux.EINVAL
		}
		return netErrno(s.ep.SetSockOptInt(tcpip.IPv6HopLimitOption, v)) // -1: the default, as in netstack
	default:
		return -linux.ENOPROTOOPT
	}
	return 0
}

func sysGetsockopt(t *Task, a [6]uint64) int64 {
	_, s, e := sockFD(t, a[0])
	if e != 0 {
		return e
	}
	level, name, val, lenp := a[1], a[2], a[3], a[4]
	o := s.ep.SocketOptions()
	b := func(v bool) int32 {
		if v {
			return 1
		}
		return 0
	}
	if level == solSocket {
		switch name {
		case soRcvtimeo, soRcvtimeo2:
			return getTimeout(s.rcvTimeout.Load(), val, lenp)
		case soSndtimeo, soSndtimeo2:
			return getTimeout(s.sndTimeout.Load(), val, lenp)
		}
	}
	var v int32
	switch {
	case level == solSocket && name == soType:
		v = int32(s.typ)
	case level == solSocket && name == soDomain:
		v = int32(s.family)
	case level == solSocket && name == soProtocol:
		v = int32(s.proto)
	case level == solSocket && name == soError:
		v = int32(-netErrno(s.ep.LastError()))
		s.update()
	case level == solSocket && name == soReuseaddr:
		v = b(o.GetReuseAddress())
	case level == solSocket && name == soReuseport:
		v = b(o.GetReusePort())
	case level == solSocket && name == soKeepalive:
		v = b(o.GetKeepAlive())
	case level == solSocket && name == soBroadcast:
		v = b(o.GetBroadcast())
	case level == solSocket && name == soSndbuf:
		v = int32(o.GetSendBufferSize())
	case level == solSocket && name == soRcvbuf:
		v = int32(o.GetReceiveBufferSize())
	case level == solTCP && name == tcpNodelay && s.typ == sockStream:
		v = b(!o.GetDelayOption())
	case level == solIPv6 && name == ipv6V6only && s.family == afInet6:
		v = b(o.GetV6Only())
	case level == solTCP && (name == tcpKeepidle || name == tcpKeepintv) && s.typ == sockStream:
		var d time.Duration
		if name == tcpKeepidle {
			var idle tcpip.KeepaliveIdleOption
			s.ep.GetSockOpt(&idle)
			d = time.Duration(idle)
		} else {
			var intv tcpip.KeepaliveIntervalOption
			s.ep.GetSockOpt(&intv)
			d = time.Duration(intv)
		}
		v = int32(d / time.Second)
	case level == solTCP && name == tcpKeepcnt && s.typ == sockStream:
		n, _ := s.ep.GetSockOptInt(tcpip.KeepaliveCountOption)
		v = int32(n)
	case level == solIP && name == ipTTL:
		if n, _ := s.ep.GetSockOptInt(tcpip.IPv4TTLOption); n != tcpip.UseDefaultIPv4TTL {
			v = int32(n)
		} else {
			v = defaultTTL
		}
	case level == solIPv6 && name == ipv6Hops && s.family == afInet6:
		if n, _ := s.ep.GetSockOptInt(tcpip.IPv6HopLimitOption); n != tcpip.UseDefaultIPv6HopLimit {
			v = int32(n)
		} else {
			v = defaultTTL
		}
	default:
		return -linux.ENOPROTOOPT
	}
	n, ok := getApp[uint32](lenp)
	if !ok {
		return -linux.EFAULT
	}
	if int32(n) < 0 {
		return -linux.EINVAL
	}
	var out [4]byte
	binary.LittleEndian.PutUint32(out[:], uint32(v))
	if !copyOut(val, out[:min(n, 4)]) || !putApp(lenp, min(n, 4)) {
		return -linux.EFAULT
	}
	return 0
}

// setTimeout reads a struct timeval of the app's (n bytes at val) into a socket timeout
// as Linux's sock_set_timeout: EINVAL if short, EDOM for microseconds out of range, a
// negative time as no wait at all, and zero as no timeout.
func setTimeout(to *atomic.Int64, val, n uint64) int64 {
	if n < 16 {
		return -linux.EINVAL
	}
	tv, ok := getApp[[2]int64](val)
	if !ok {
		return -linux.EFAULT
	}
	switch {
	case tv[1] < 0 || tv[1] >= 1e6:
		return -linux.EDOM
	case tv[0] < 0:
		to.Store(1) // as Linux: a timeout already over
	case tv[0] > 1<<33:
		to.Store(0) // as Linux: beyond what it counts, for ever
	default:
		to.Store(tv[0]*1e9 + tv[1]*1e3)
	}
	return 0
}

// getTimeout writes a socket timeout as a struct timeval, at most *lenp bytes of it.
func getTimeout(to int64, val, lenp uint64) int64 {
	n, ok := getApp[uint32](lenp)
	if !ok {
		return -linux.EFAULT
	}
	if int32(n) < 0 {
		return -linux.EINVAL
	}
	var out [16]byte
	binary.LittleEndian.PutUint64(out[:], uint64(to/1e9))
	binary.LittleEndian.PutUint64(out[8:], uint64(to%1e9/1e3))
	if !copyOut(val, out[:min(n, 16)]) || !putApp(lenp, min(n, 16)) {
		return -linux.EFAULT
	}
	return 0
}

// sockIoctl serves FIONREAD on a socket (FIONBIO is any descriptor's: genericIoctl).
func sockIoctl(f *file, req, arg uint64) int64 {
	const fionread = 0x541b
	if req != fionread {
		return -linux.ENOTTY
	}
	n, err := f.sock.ep.GetSockOptInt(tcpip.ReceiveQueueSizeOption)
	if err != nil {
		return netErrno(err)
	}
	if !putApp(arg, int32(n)) {
		return -linux.EFAULT
	}
	return 0
}

func sysIoctl(t *Task, a [6]uint64) int64 {
	f := t.proc.fd(a[0])
	if f == nil {
		return -linux.EBADF
	}
	if e, ok := genericIoctl(f, a[1], a[2]); ok {
		return e
	}
	switch f.kind {
	case kindSocket:
		return sockIoctl(f, a[1], a[2])
	case kindUnix:
		return unixIoctl(f, a[1], a[2])
	case kindStdin, kindStdout, kindStderr:
		return terminalIoctl(t, streamOf(f), a[1], a[2])
	}
	return -linux.ENOTTY
}
