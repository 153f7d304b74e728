package kernel

import (
	"encoding/binary"
	"fmt"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
)

// AF_UNIX sockets, kept in tier 1 as pipes are: a socket is a queue of what it was sent
// and has not read, and the other end it sends to. Stream sockets carry bytes; datagram
// and seqpacket sockets carry messages whole. A blocking call waits on the socket's
// condition. For epoll, each descriptor of a socket that epoll watches has a readiness
// descriptor in tier 0, as netstack's sockets have (socket.go), and tier 1 sets them
// after every change to the socket, so that the app's epoll reports it without a round
// trip through tier 1 and an edge-triggered watch (Go's netpoller) sees each change as an
// edge. One per descriptor, not per socket: tier 0's epoll tells watches apart by
// descriptor, and a dup watched in the same epoll instance (net.FileListener) is another
// watch, as on Linux.
//
// Names live in tier 1 only. Linux makes a socket file at a bound path, but the guest's
// files are the host's, reached through the monitor, and a socket file there would be a
// host object nothing serves: the name is kept here instead. bind asks the host what
// making the file would meet (a file already there: EADDRINUSE; no directory: ENOENT),
// connect, stat and access find the name here, unlink removes it, and, as Linux's file
// does, it outlives its socket until unlinked. Programs the app starts run in guests of
// their own and do not see it, nor does a directory listing.

// Socket types, message and control flags, and options beyond socket.go's
// (include/linux/net.h, socket.h, asm-generic/socket.h).
const (
	sockRaw        = 3
	sockSeqpacket  = 5
	afNetlink      = 16
	msgCtrunc      = 0x8
	msgCmsgCloexec = 0x40000000
	scmRights      = 1
	scmCredentials = 2
	soPasscred     = 16
	soPeercred     = 17
	soAcceptconn   = 30
)

// Linux's limits and defaults for unix sockets, sysctls at their defaults.
const (
	sockaddrUnSize   = 110    // sizeof(struct sockaddr_un): the family, then sun_path
	unixMaxDgramQlen = 10     // net.unix.max_dgram_qlen: a datagram socket's queue
	unixBufDefault   = 212992 // net.core.[rw]mem_default and [rw]mem_max
	unixMinSndbuf    = 4608   // SOCK_MIN_SNDBUF
	unixMinRcvbuf    = 2304   // SOCK_MIN_RCVBUF
	unixMsgOverhead  = 576    // what Linux charges a message beyond its bytes (struct sk_buff and its shared info)
	scmMaxFD         = 253    // SCM_MAX_FD: descriptors one message may carry
	cmsgHdrLen       = 16     // sizeof(struct cmsghdr)
)

// unixMu guards every unix socket and the names bound. One lock for all: a connection's
// two ends, a listener's queue and the names change together, with no order between
// sockets' locks to get wrong; it guards bookkeeping and copies, never a wait (a blocked
// call waits on its socket's cond, which releases it). Process.mu may be held when it is
// taken (Process.shared), never the reverse.
var unixMu sync.Mutex

var (
	unixPaths    = map[string]*unixSocket{} // bound paths, absolute; a closed socket's stays until unlinked
	unixAbstract = map[abstractName]*unixSocket{}
	lastAutobind uint32                 // the number of the last name autobind gave
	carried      = map[carriedKey]int{} // host files and tier-0 objects messages carry (SCM_RIGHTS)
)

// abstractName is a bound abstract name (sun_path[0] == 0). Linux looks them up by type
// too: a stream and a datagram socket may both hold one name and neither reaches the other.
type abstractName struct {
	typ  int
	name string
}

type unixState int

const (
	unixUnconnected unixState = iota
	unixListening
	unixConnected
)

// unixSocket is an AF_UNIX socket.
type unixSocket struct {
	typ     int
	readies []uintptr    // its descriptors' readiness descriptors in tier 0 (file.ready)
	level   uint32       // the events they have, as last told
	cond    sync.Cond    // on unixMu: the socket changed
	refs    atomic.Int32 // descriptors (dup, vfork, messages in flight) sharing it: dup runs under Process.mu, so not under unixMu

	state   unixState
	closed  bool        // its last descriptor closed
	addr    []byte      // the sockaddr_un bound, as getsockname gives it; nil: unbound
	peer    *unixSocket // the other end; for a datagram socket, where a send with no address goes
	credSet bool        // SO_PEERCRED has an answer: connected, or listening

	accepts []*unixSocket // listening: connections not yet accepted, by their server ends
	backlog int

	queue   []*unixMsg    // received, not yet read
	waiters []*unixSocket // sockets to tell when there is room here (a datagram queue, a backlog)
	wmem    int           // what it sent that its receivers have not read, as Linux charges it (sk_wmem_alloc)

	shutRead, shutWrite bool  // Linux's sk_shutdown: no more to read, no more to write
	err                 int64 // a pending error (sk_err): ECONNRESET when the peer closed with data unread
	sndbuf, rcvbuf      int
	passcred, reuse     bool
	netlink             int // a NETLINK_ROUTE socket's type (SOCK_RAW or SOCK_DGRAM): tier 1 answers what it sends (netlink.go); 0: none

	// SO_RCVTIMEO and SO_SNDTIMEO: how long a receive or accept, and a send or connect,
	// waits before EAGAIN (nanoseconds; 0 for ever). Atomic: set outside unixMu.
	rcvTimeout, sndTimeout atomic.Int64
}

// deadline is when a wait limited by a socket timeout ends; zero for none.
func deadline(timeout *atomic.Int64) time.Time {
	if d := timeout.Load(); d > 0 {
		return time.Now().Add(time.Duration(d))
	}
	return time.Time{}
}

// wait waits on s.cond, with unixMu held, for a change, or until deadline (zero: none).
// It answers 0 when woken (the caller looks again), EAGAIN once the deadline has passed,
// and for a signal the task takes errRestart, or EINTR where a timeout was set, as Linux
// (sock_intr_errno).
func (s *unixSocket) wait(t *Task, until time.Time) int64 {
	if until.IsZero() {
		if !t.waitOn(&s.cond) {
			return -errRestart
		}
		return 0
	}
	left := time.Until(until)
	if left <= 0 {
		return -linux.EAGAIN
	}
	timer := time.AfterFunc(left, func() {
		unixMu.Lock()
		s.cond.Broadcast()
		unixMu.Unlock()
	})
	defer timer.Stop()
	if !t.waitOn(&s.cond) {
		return -linux.EINTR
	}
	return 0
}

// unixMsg is what one send put in a socket's queue.
type unixMsg struct {
	data   []byte
	from   []byte      // the sender's address when it sent
	sender *unixSocket // charged for it (wmem) until it is read
	charge int
	rights []passedFile
}

// passedFile is a descriptor a message carries (SCM_RIGHTS): a copy of the sender's,
// holding what one descriptor holds, and the process whose it was.
type passedFile struct {
	f    file
	from *Process
}

// carriedKey names what closing a host file's or tier-0 object's last descriptor would
// close: its handle, or tier 0's descriptor.
type carriedKey struct {
	kind fileKind
	id   uint64
}

// ucred is struct ucred: SO_PEERCRED's and SCM_CREDENTIALS' answer.
type ucred struct {
	pid      int32
	uid, gid uint32
}

// appCred is the app's credentials, as getpid, getuid and getgid answer them: every
// socket's peer is the app itself.
func appCred() ucred { return ucred{selfPID.Load(), abi.AppUID, abi.AppGID} }

// The tier-0 and host calls unix sockets make, as variables: the unit tests, which run on
// the host, stand in for tier 0 and the monitor.
var (
	openReady = func() (uintptr, int64) {
		fd, _, e := syscall.RawSyscall(abi.SysPithReadyFD, 0, 0, 0)
		return fd, -int64(e)
	}
	setReady   = func(fd uintptr, events uint32) { syscall.RawSyscall(abi.SysPithSetReady, fd, uintptr(events), 0) }
	closeReady = func(fd uintptr) { syscall.RawSyscall(syscall.SYS_CLOSE, fd, 0, 0) }
	// unixHostStat is the mode of the host file at p (its link's, if nofollow), or the
	// errno.
	unixHostStat = func(p string, nofollow bool) (uint32, int64) {
		var st syscall.Stat_t
		e := hostStat(0, p, &st, nofollow)
		return st.Mode, e
	}
)

func newUnixSocket(typ int) *unixSocket {
	s := &unixSocket{typ: typ, sndbuf: unixBufDefault, rcvbuf: unixBufDefault}
	s.cond.L = &unixMu
	s.refs.Store(1)
	return s
}

// readyFD is descriptor f's readiness descriptor in tier 0, made the first time epoll is
// asked about f. Tier 0 numbers its own console 0 to 2, so 0 never names one.
func (s *unixSocket) readyFD(f *file) (uintptr, int64) {
	unixMu.Lock()
	defer unixMu.Unlock()
	if f.ready == 0 {
		fd, e := openReady()
		if e != 0 {
			return 0, e
		}
		f.ready = fd
		s.readies = append(s.readies, fd)
		if s.level != 0 {
			setReady(fd, s.level)
		}
	}
	return f.ready, 0
}

// events is the socket's readiness, as Linux's unix_poll and unix_dgram_poll answer it.
func (s *unixSocket) events() uint32 {
	var m uint32
	if s.err != 0 {
		m |= linux.EPOLLERR
	}
	if s.shutRead {
		m |= linux.EPOLLIN | linux.EPOLLRDNORM | linux.EPOLLRDHUP
	}
	if s.shutRead && s.shutWrite {
		m |= linux.EPOLLHUP
	}
	if len(s.queue) > 0 || len(s.accepts) > 0 {
		m |= linux.EPOLLIN | linux.EPOLLRDNORM
	}
	if s.typ != sockDgram && s.state == unixUnconnected {
		m |= linux.EPOLLHUP
	}
	if s.writable() {
		m |= linux.EPOLLOUT | linux.EPOLLWRNORM | linux.EPOLLWRBAND
	}
	return m
}

// writable reports whether a send would find room: three quarters of the send buffer
// free, as Linux reports it, and for a datagram socket, room at its peer, which then
// tells it when there is.
func (s *unixSocket) writable() bool {
	if s.state == unixListening || s.wmem*4 > s.sndbuf {
		return false
	}
	if p := s.peer; p != nil && p.full(s) {
		p.waitRoom(s)
		return false
	}
	return true
}

// full reports whether a datagram from sender would find s's queue full. Linux bounds
// the queue of a datagram socket only against senders it is not connected to.
func (s *unixSocket) full(sender *unixSocket) bool {
	return s.typ == sockDgram && s.peer != sender && len(s.queue) > unixMaxDgramQlen
}

// waitRoom has w told (changed) when s next makes room.
func (s *unixSocket) waitRoom(w *unixSocket) {
	if !slices.Contains(s.waiters, w) {
		s.waiters = append(s.waiters, w)
	}
}

// roomMade tells the sockets waiting for room in s that there may be some.
func (s *unixSocket) roomMade() {
	ws := s.waiters
	s.waiters = nil
	for _, w := range ws {
		w.changed()
	}
}

// changed gives tier 0 the socket's readiness now and wakes the tasks waiting on it.
func (s *unixSocket) changed() {
	if !s.closed {
		if r := s.events(); r != s.level {
			s.level = r
			for _, fd := range s.readies {
				setReady(fd, r)
			}
		}
	}
	s.cond.Broadcast()
	pollWake()
}

// pop removes the message at the head of the queue: its sender has the room back.
func (s *unixSocket) pop() {
	m := s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	m.sender.wmem -= m.charge
	m.sender.changed()
	s.roomMade()
}

// release drops one descriptor's reference, closing its readiness descriptor (ready, if
// not 0), and the socket with the last.
func (s *unixSocket) release(ready uintptr) {
	unixMu.Lock()
	if ready != 0 {
		s.readies = slices.DeleteFunc(s.readies, func(fd uintptr) bool { return fd == ready })
		closeReady(ready)
	}
	var dropped []passedFile
	if s.refs.Add(-1) == 0 {
		dropped = s.close(false)
	}
	unixMu.Unlock()
	dropPassed(dropped)
}

// close ends the socket: its last descriptor closed or, for a connection never accepted
// (embryo), its listener's. As Linux's unix_release_sock: connections waiting to be
// accepted end too, and a stream or seqpacket peer can neither read nor write more, with
// ECONNRESET pending if this end had data unread or was never accepted. It returns the
// descriptors its unread messages carried, to close once unixMu is released.
func (s *unixSocket) close(embryo bool) []passedFile {
	s.closed = true
	if s.netlink != 0 {
		s.netlinkClosed()
	}
	if len(s.addr) > 2 && s.addr[2] == 0 {
		if k := (abstractName{s.typ, string(s.addr[2:])}); unixAbstract[k] == s {
			delete(unixAbstract, k)
		}
	}
	var dropped []passedFile
	for _, c := range s.accepts {
		dropped = append(dropped, c.close(true)...)
	}
	s.accepts = nil
	if p := s.peer; p != nil && s.typ != sockDgram {
		p.shutRead, p.shutWrite = true, true
		if len(s.queue) > 0 || embryo {
			p.err = linux.ECONNRESET
		}
		p.changed()
	}
	for len(s.queue) > 0 {
		dropped = append(dropped, s.queue[0].rights...)
		s.pop()
	}
	s.roomMade()
	s.cond.Broadcast()
	pollWake()
	return dropped
}

// unixAddr is a socket's address as getsockname and accept give it: an unbound socket's
// is the family alone.
func unixAddr(addr []byte) []byte {
	if addr == nil {
		return []byte{afUnix, 0}
	}
	return addr
}

// readUnixAddr reads the sockaddr_un of n bytes at addr and returns sun_path's bytes:
// empty for the family alone.
func readUnixAddr(addr, n uint64) ([]byte, int64) {
	if n < 2 || n > sockaddrUnSize {
		return nil, -linux.EINVAL
	}
	b := make([]byte, n)
	if !copyIn(addr, b) {
		return nil, -linux.EFAULT
	}
	if binary.LittleEndian.Uint16(b) != afUnix {
		return nil, -linux.EINVAL
	}
	return b[2:], 0
}

// pathName is the path in sun_path's bytes: up to the first NUL.
func pathName(name []byte) string {
	if i := slices.Index(name, 0); i >= 0 {
		name = name[:i]
	}
	return string(name)
}

// unixTarget is a name to connect or send to: an absolute path or an abstract name.
type unixTarget struct {
	path, abstract string
}

func resolveTarget(p *Process, name []byte) (unixTarget, int64) {
	if len(name) == 0 {
		return unixTarget{}, -linux.EINVAL
	}
	if name[0] == 0 {
		return unixTarget{abstract: string(name)}, 0
	}
	abs, e := p.absPath(atFDCWD, pathName(name))
	return unixTarget{path: abs}, e
}

// find is the socket of type typ bound to the name (unixMu held), or the errno Linux
// gives: ECONNREFUSED where none is bound, or only a file is (its socket closed, or a
// host file), EPROTOTYPE for another type at a path, and where nothing is at a path,
// what the host says (ENOENT).
func (u unixTarget) find(typ int) (*unixSocket, int64) {
	if u.path == "" {
		if s := unixAbstract[abstractName{typ, u.abstract}]; s != nil {
			return s, 0
		}
		return nil, -linux.ECONNREFUSED
	}
	s := unixPaths[u.path]
	switch {
	case s == nil:
		if _, e := unixHostStat(u.path, false); e != 0 {
			return nil, e
		}
		return nil, -linux.ECONNREFUSED
	case s.closed:
		return nil, -linux.ECONNREFUSED
	case s.typ != typ:
		return nil, -linux.EPROTOTYPE
	}
	return s, 0
}

// autobind binds the socket to an abstract name of five hex digits, as Linux does for
// bind with no name, and for a socket that passes credentials and has none.
func (s *unixSocket) autobind() int64 {
	for range 1 << 20 {
		lastAutobind = (lastAutobind + 1) & 0xfffff
		k := abstractName{s.typ, fmt.Sprintf("\x00%05x", lastAutobind)}
		if unixAbstract[k] == nil {
			unixAbstract[k] = s
			s.addr = append([]byte{afUnix, 0}, k.name...)
			return 0
		}
	}
	return -linux.ENOSPC
}

// unixType checks socket's type and protocol for AF_UNIX. SOCK_RAW is SOCK_DGRAM, as on
// Linux.
func unixType(typ, proto int) (int, int64) {
	if proto != 0 && proto != afUnix {
		return 0, -linux.EPROTONOSUPPORT
	}
	switch typ {
	case sockStream, sockDgram, sockSeqpacket:
		return typ, 0
	case sockRaw:
		return sockDgram, 0
	}
	return 0, -linux.ESOCKTNOSUPPORT
}

func (p *Process) installUnix(s *unixSocket, flags uint64) int64 {
	f := &file{kind: kindUnix, unix: s, flags: syscall.O_RDWR | flags&sockNonblock, cloexec: flags&sockCloexec != 0}
	fd := p.installFD(f)
	if fd < 0 {
		s.release(0)
	}
	return fd
}

// unixSocketFD serves socket(AF_UNIX, ...); socket.go has checked the flags.
func unixSocketFD(t *Task, typ, proto int, flags uint64) int64 {
	typ, e := unixType(typ, proto)
	if e != 0 {
		return e
	}
	s := newUnixSocket(typ)
	unixMu.Lock()
	s.changed()
	unixMu.Unlock()
	return t.proc.installUnix(s, flags)
}

func sysSocketpair(t *Task, a [6]uint64) int64 {
	family, flags := int(a[0]), a[1]
	if flags&^(0xf|sockNonblock|sockCloexec) != 0 {
		return -linux.EINVAL
	}
	switch family {
	case afUnix:
	case afInet, afInet6, afNetlink:
		return -linux.EOPNOTSUPP // Linux makes the socket, which has no pairs
	default:
		return -linux.EAFNOSUPPORT
	}
	typ, e := unixType(int(flags&0xf), int(a[2]))
	if e != 0 {
		return e
	}
	sv, ok := appSlice(a[3], 8)
	if !ok {
		return -linux.EFAULT
	}
	clear(sv) // a fault answers EFAULT before any socket exists
	x, y := newUnixSocket(typ), newUnixSocket(typ)
	unixMu.Lock()
	x.peer, y.peer = y, x
	x.credSet, y.credSet = true, true
	if typ != sockDgram {
		x.state, y.state = unixConnected, unixConnected
	}
	x.changed()
	y.changed()
	unixMu.Unlock()
	fx := t.proc.installUnix(x, flags)
	if fx < 0 {
		y.release(0)
		return fx
	}
	fy := t.proc.installUnix(y, flags)
	if fy < 0 {
		sysClose(t, [6]uint64{uint64(fx)})
		return fy
	}
	binary.LittleEndian.PutUint32(sv, uint32(fx))
	binary.LittleEndian.PutUint32(sv[4:], uint32(fy))
	return 0
}

func unixBind(t *Task, f *file, a [6]uint64) int64 {
	s := f.unix
	if s.netlink != 0 {
		return netlinkBind(f, a)
	}
	name, e := readUnixAddr(a[1], a[2])
	if e != 0 {
		return e
	}
	if len(name) > 0 && name[0] != 0 {
		return s.bindPath(t.proc, name)
	}
	unixMu.Lock()
	defer unixMu.Unlock()
	if s.addr != nil {
		return -linux.EINVAL
	}
	if len(name) == 0 {
		return s.autobind()
	}
	k := abstractName{s.typ, string(name)}
	if unixAbstract[k] != nil {
		return -linux.EADDRINUSE
	}
	unixAbstract[k] = s
	s.addr = append([]byte{afUnix, 0}, name...)
	return 0
}

// bindPath binds the socket to a path, which must be free on the host too: Linux would
// make a file there.
func (s *unixSocket) bindPath(p *Process, name []byte) int64 {
	pathname := pathName(name)
	abs, e := p.absPath(atFDCWD, pathname)
	if e != 0 {
		return e
	}
	switch _, e := unixHostStat(abs, true); e {
	case 0:
		return -linux.EADDRINUSE
	case -linux.ENOENT:
	default:
		return e
	}
	mode, e := unixHostStat(path.Dir(abs), false)
	if e != 0 {
		return e
	}
	if mode&syscall.S_IFMT != syscall.S_IFDIR {
		return -linux.ENOTDIR
	}
	unixMu.Lock()
	defer unixMu.Unlock()
	if unixPaths[abs] != nil {
		return -linux.EADDRINUSE
	}
	if s.addr != nil {
		return -linux.EINVAL
	}
	unixPaths[abs] = s
	s.addr = append(append([]byte{afUnix, 0}, pathname...), 0) // as given, relative or not
	return 0
}

// unixNamed reports whether path p is a socket's name (stat, access).
func unixNamed(p string) bool {
	unixMu.Lock()
	defer unixMu.Unlock()
	return unixPaths[p] != nil
}

// unixUnlink removes the socket name at path p, reporting whether there was one.
func unixUnlink(p string) bool {
	unixMu.Lock()
	defer unixMu.Unlock()
	if unixPaths[p] == nil {
		return false
	}
	delete(unixPaths, p)
	return true
}

// unixUnlinkUnder removes the socket names in directory dir, which the host removed: it
// had none of them to refuse for (ENOTEMPTY), nor could a directory listing have shown
// them to a program emptying it (os.RemoveAll), and a directory made there again must
// not find them.
func unixUnlinkUnder(dir string) {
	unixMu.Lock()
	defer unixMu.Unlock()
	for p := range unixPaths {
		if path.Dir(p) == dir {
			delete(unixPaths, p)
		}
	}
}

func unixListen(t *Task, f *file, a [6]uint64) int64 {
	s := f.unix
	unixMu.Lock()
	defer unixMu.Unlock()
	if s.typ == sockDgram {
		return -linux.EOPNOTSUPP
	}
	if s.addr == nil || s.state == unixConnected {
		return -linux.EINVAL
	}
	s.backlog = int(min(uint32(a[1]), 4096)) // as unsigned, then net.core.somaxconn at most
	s.state, s.credSet = unixListening, true
	s.roomMade()
	s.changed()
	return 0
}

func unixAccept(t *Task, f *file, a [6]uint64) int64 {
	if a[3]&^(sockNonblock|sockCloexec) != 0 {
		return -linux.EINVAL
	}
	c, e := f.unix.accept(t, f.flags&syscall.O_NONBLOCK != 0)
	if e != 0 {
		return e
	}
	unixMu.Lock()
	peer := unixAddr(c.peer.addr)
	unixMu.Unlock()
	if e := putSockaddr(a[1], a[2], peer); e != 0 {
		c.release(0)
		return e
	}
	return t.proc.installUnix(c, a[3])
}

// accept takes the first connection waiting, its server end.
func (s *unixSocket) accept(t *Task, nonblock bool) (*unixSocket, int64) {
	until := deadline(&s.rcvTimeout)
	unixMu.Lock()
	defer unixMu.Unlock()
	if s.typ == sockDgram {
		return nil, -linux.EOPNOTSUPP
	}
	for len(s.accepts) == 0 {
		if s.state != unixListening || s.closed {
			return nil, -linux.EINVAL
		}
		if nonblock {
			return nil, -linux.EAGAIN
		}
		if e := s.wait(t, until); e != 0 {
			return nil, e
		}
	}
	c := s.accepts[0]
	s.accepts[0] = nil
	s.accepts = s.accepts[1:]
	c.passcred = s.passcred
	s.roomMade()
	s.changed()
	return c, 0
}

func unixConnect(t *Task, f *file, a [6]uint64) int64 {
	s := f.unix
	if s.typ == sockDgram && a[2] >= 2 {
		if fam, ok := getApp[uint16](a[1]); ok && fam == afUnspec {
			unixMu.Lock()
			defer unixMu.Unlock()
			s.peer = nil
			s.changed()
			return 0
		}
	}
	if s.netlink != 0 {
		return netlinkConnect(f, a)
	}
	name, e := readUnixAddr(a[1], a[2])
	if e != 0 {
		return e
	}
	to, e := resolveTarget(t.proc, name)
	if e != 0 {
		return e
	}
	unixMu.Lock()
	defer unixMu.Unlock()
	if s.passcred && s.addr == nil {
		if e := s.autobind(); e != 0 {
			return e
		}
	}
	if s.typ == sockDgram {
		target, e := to.find(s.typ)
		if e != 0 {
			return e
		}
		if target.peer != nil && target.peer != s {
			return -linux.EPERM // it receives from its own peer only
		}
		s.peer = target
		s.changed()
		return 0
	}
	return s.connectStream(t, to, f.flags&syscall.O_NONBLOCK != 0)
}

// connectStream connects a stream or seqpacket socket to the listener bound to to,
// waiting for room in its backlog unless nonblock. unixMu is held.
func (s *unixSocket) connectStream(t *Task, to unixTarget, nonblock bool) int64 {
	until := deadline(&s.sndTimeout)
	var l *unixSocket
	for {
		if s.closed {
			return -linux.EBADF
		}
		var e int64
		if l, e = to.find(s.typ); e != 0 {
			return e
		}
		if l.state != unixListening || l.shutRead {
			return -linux.ECONNREFUSED
		}
		switch s.state {
		case unixConnected:
			return -linux.EISCONN
		case unixListening:
			return -linux.EINVAL
		}
		if len(l.accepts) <= l.backlog {
			break
		}
		if nonblock {
			return -linux.EAGAIN
		}
		l.waitRoom(s)
		if e := s.wait(t, until); e != 0 {
			return e
		}
	}
	c := newUnixSocket(s.typ)
	c.state, c.peer, c.addr, c.credSet = unixConnected, s, l.addr, true
	s.state, s.peer, s.credSet = unixConnected, c, true
	l.accepts = append(l.accepts, c)
	c.changed()
	s.changed()
	l.changed()
	return 0
}

func unixGetsockname(t *Task, f *file, a [6]uint64) int64 { return unixName(f.unix, a, false) }
func unixGetpeername(t *Task, f *file, a [6]uint64) int64 { return unixName(f.unix, a, true) }

func unixName(s *unixSocket, a [6]uint64, peer bool) int64 {
	unixMu.Lock()
	addr := s.addr
	if peer && s.netlink != 0 {
		addr = nlAddr(0) // the kernel
	} else if peer {
		if s.peer == nil {
			unixMu.Unlock()
			return -linux.ENOTCONN
		}
		addr = s.peer.addr
	}
	unixMu.Unlock()
	if a[1] == 0 {
		return -linux.EFAULT
	}
	return putSockaddr(a[1], a[2], unixAddr(addr))
}

func unixShutdown(t *Task, f *file, a [6]uint64) int64 {
	if a[1] > 2 {
		return -linux.EINVAL
	}
	rd, wr := a[1] != 1, a[1] != 0 // SHUT_RD, SHUT_WR, SHUT_RDWR
	s := f.unix
	unixMu.Lock()
	defer unixMu.Unlock()
	s.shutRead, s.shutWrite = s.shutRead || rd, s.shutWrite || wr
	if p := s.peer; p != nil && s.typ != sockDgram {
		p.shutRead, p.shutWrite = p.shutRead || wr, p.shutWrite || rd
		p.changed()
	}
	s.changed()
	return 0
}

// bufsLen is the bytes app buffers hold.
func bufsLen(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}

// gather copies app buffers bufs, from byte off on, into dst; false on a fault.
func gather(dst []byte, bufs [][]byte, off int) (ok bool) {
	defer catchAppFault(func() { ok = false })
	for _, b := range bufs {
		if off >= len(b) {
			off -= len(b)
			continue
		}
		dst = dst[copy(dst, b[off:]):]
		off = 0
		if len(dst) == 0 {
			break
		}
	}
	return true
}

// scatter copies data into app buffers bufs from byte off on, and says how much: less
// than data where they are full; false on a fault.
func scatter(bufs [][]byte, off int, data []byte) (n int, ok bool) {
	defer catchAppFault(func() { ok = false })
	for _, b := range bufs {
		if n == len(data) {
			break
		}
		if off >= len(b) {
			off -= len(b)
			continue
		}
		n += copy(b[off:], data[n:])
		off = 0
	}
	return n, true
}

// sentOr is what a send that stopped with errno e answers: the bytes it sent, if any.
func sentOr(sent int, e int64) int64 {
	if sent > 0 {
		return int64(sent)
	}
	return e
}

// send sends app buffers bufs: bytes on a stream, one message otherwise, to the name to
// for a datagram socket given one (another type only asks whether to is nil), with the
// descriptors rights, which it closes where they are not sent.
func (s *unixSocket) send(t *Task, f *file, bufs [][]byte, flags uint64, to []byte, rights []passedFile) int64 {
	if s.netlink != 0 {
		dropPassed(rights)
		return s.netlinkSend(bufs)
	}
	nonblock := f.flags&syscall.O_NONBLOCK != 0 || flags&msgDontwait != 0
	var r int64
	kept := false
	switch {
	case flags&msgOOB != 0:
		r = -linux.EOPNOTSUPP
	case s.typ == sockStream:
		r, kept = s.sendStream(t, bufs, nonblock, to != nil, rights)
	case to != nil && s.typ == sockDgram:
		target, e := resolveTarget(t.proc, to)
		if r = e; e == 0 {
			r, kept = s.sendMsg(t, bufs, nonblock, &target, rights)
		}
	default:
		r, kept = s.sendMsg(t, bufs, nonblock, nil, rights)
	}
	if !kept {
		dropPassed(rights)
	}
	if r == -linux.EPIPE && s.typ == sockStream && flags&msgNosignal == 0 {
		t.proc.post(t, sigPIPE) // as Linux, for streams only
	}
	return r
}

// sendStream queues bufs at the peer in pieces of half the send buffer, waiting for room
// unless nonblock; it reports whether a piece took rights.
func (s *unixSocket) sendStream(t *Task, bufs [][]byte, nonblock, named bool, rights []passedFile) (int64, bool) {
	until := deadline(&s.sndTimeout)
	unixMu.Lock()
	defer unixMu.Unlock()
	if named {
		if s.state == unixConnected {
			return -linux.EISCONN, false
		}
		return -linux.EOPNOTSUPP, false
	}
	if s.state != unixConnected {
		return -linux.ENOTCONN, false
	}
	total, sent, kept := bufsLen(bufs), 0, false
	for sent < total {
		p := s.peer
		switch {
		case s.closed:
			return sentOr(sent, -linux.EBADF), kept
		case s.shutWrite || p.closed || p.shutRead:
			return sentOr(sent, -linux.EPIPE), kept
		case s.wmem >= s.sndbuf:
			if nonblock {
				return sentOr(sent, -linux.EAGAIN), kept
			}
			if e := s.wait(t, until); e != 0 {
				return sentOr(sent, e), kept
			}
			continue
		}
		data := make([]byte, min(total-sent, max(s.sndbuf/2-64, 1)))
		if !gather(data, bufs, sent) {
			return sentOr(sent, -linux.EFAULT), kept
		}
		m := &unixMsg{data: data, from: s.addr, sender: s, charge: len(data) + unixMsgOverhead}
		if !kept {
			m.rights, kept = rights, true
		}
		p.queue = append(p.queue, m)
		s.wmem += m.charge
		sent += len(data)
		p.changed()
		s.changed()
	}
	return int64(sent), kept
}

// sendMsg queues bufs as one message at the socket named to, or the peer, waiting for
// room unless nonblock; it reports whether the message took rights.
func (s *unixSocket) sendMsg(t *Task, bufs [][]byte, nonblock bool, to *unixTarget, rights []passedFile) (int64, bool) {
	data := make([]byte, bufsLen(bufs))
	if !gather(data, bufs, 0) {
		return -linux.EFAULT, false
	}
	until := deadline(&s.sndTimeout)
	unixMu.Lock()
	defer unixMu.Unlock()
	if s.typ == sockSeqpacket {
		if e := s.err; e != 0 {
			s.err = 0
			s.changed()
			return -e, false
		}
		if s.state != unixConnected {
			return -linux.ENOTCONN, false
		}
	}
	if s.passcred && s.addr == nil {
		if e := s.autobind(); e != 0 {
			return e, false
		}
	}
	if len(data) > s.sndbuf-32 {
		return -linux.EMSGSIZE, false
	}
	for {
		if s.closed {
			return -linux.EBADF, false
		}
		if s.shutWrite {
			return -linux.EPIPE, false
		}
		target := s.peer
		if to != nil {
			var e int64
			if target, e = to.find(sockDgram); e != 0 {
				return e, false
			}
		} else if target == nil {
			return -linux.ENOTCONN, false
		}
		if target.closed { // only a peer is found closed
			if s.typ == sockSeqpacket {
				return -linux.EPIPE, false
			}
			s.peer = nil // Linux disconnects, once: the next send answers ENOTCONN
			s.changed()
			return -linux.ECONNREFUSED, false
		}
		if target.peer != nil && target.peer != s {
			return -linux.EPERM, false
		}
		if target.shutRead {
			return -linux.EPIPE, false
		}
		if s.wmem < s.sndbuf && !target.full(s) {
			m := &unixMsg{data: data, from: s.addr, sender: s, charge: len(data) + unixMsgOverhead, rights: rights}
			target.queue = append(target.queue, m)
			s.wmem += m.charge
			target.changed()
			s.changed()
			return int64(len(data)), true
		}
		if nonblock {
			return -linux.EAGAIN, false
		}
		if target.full(s) {
			target.waitRoom(s)
		}
		if e := s.wait(t, until); e != 0 {
			return e, false
		}
	}
}

// unixRecv is what a receive took.
type unixRecv struct {
	n         int64  // bytes, or an errno
	from      []byte // the sender's address; nil if it had none
	rights    []passedFile
	truncated bool // a message was longer than the buffers (MSG_TRUNC)
	creds     bool // the socket passes credentials (SO_PASSCRED)
}

// recv receives into app buffers bufs: what a stream has, or one message.
func (s *unixSocket) recv(t *Task, f *file, bufs [][]byte, flags uint64) unixRecv {
	nonblock := f.flags&syscall.O_NONBLOCK != 0 || flags&msgDontwait != 0
	switch {
	case flags&msgOOB != 0 && s.typ == sockStream:
		return unixRecv{n: -linux.EINVAL} // there is never out-of-band data
	case flags&msgOOB != 0:
		return unixRecv{n: -linux.EOPNOTSUPP}
	case s.typ == sockStream:
		return s.recvStream(t, bufs, flags, nonblock)
	}
	return s.recvMsg(t, bufs, flags, nonblock)
}

// read serves read and readv: a receive with no room for the descriptors a message
// carried, which close.
func (s *unixSocket) read(t *Task, f *file, bufs [][]byte) int64 {
	if bufsLen(bufs) == 0 {
		return 0 // as Linux's sock_read_iter, which does not receive at all
	}
	r := s.recv(t, f, bufs, 0)
	dropPassed(r.rights)
	return r.n
}

// recvStream reads what the stream has, up to the buffers (all of them, MSG_WAITALL),
// waiting for some unless nonblock. As Linux, it stops after a message that carried
// descriptors, and reports a pending error only when it has nothing to read.
func (s *unixSocket) recvStream(t *Task, bufs [][]byte, flags uint64, nonblock bool) (r unixRecv) {
	want, peek := bufsLen(bufs), flags&msgPeek != 0
	if want == 0 {
		return r
	}
	need := 1
	if flags&msgWaitall != 0 && !peek {
		need = want
	}
	until := deadline(&s.rcvTimeout)
	unixMu.Lock()
	defer unixMu.Unlock()
	if s.state != unixConnected {
		return unixRecv{n: -linux.EINVAL}
	}
	r.creds = s.passcred
	copied := 0
	defer s.changed()
	for {
		for i := 0; copied < want && i < len(s.queue); {
			m := s.queue[i]
			if copied == 0 {
				r.from = m.from
			}
			n, ok := scatter(bufs, copied, m.data)
			if !ok {
				r.n = sentOr(copied, -linux.EFAULT)
				return r
			}
			copied += n
			carries := m.rights != nil
			switch {
			case peek:
				if carries {
					r.rights = dupPassed(m.rights)
				}
				i++
			case n < len(m.data):
				r.rights, m.rights = m.rights, nil
				m.data = m.data[n:]
			default:
				r.rights, m.rights = m.rights, nil
				s.pop()
			}
			if carries {
				break
			}
		}
		if copied >= need || copied > 0 && (s.err != 0 || s.shutRead || nonblock || len(r.rights) > 0) {
			r.n = int64(copied)
			return r
		}
		var done bool
		if r.n, done = s.awaitData(t, nonblock, until); done {
			r.n = sentOr(copied, r.n) // a signal after part of MSG_WAITALL: that part
			return r
		}
	}
}

// awaitData is a receive's answer when there is nothing to read: a pending error, the end
// of the stream (0), EBADF, EAGAIN (now, or at until), or what a signal makes it; or it
// waits for a change and answers done false. unixMu is held.
func (s *unixSocket) awaitData(t *Task, nonblock bool, until time.Time) (n int64, done bool) {
	switch {
	case s.err != 0:
		n, s.err = -s.err, 0
		return n, true
	case s.shutRead:
		return 0, true
	case s.closed:
		return -linux.EBADF, true
	case nonblock:
		return -linux.EAGAIN, true
	}
	if e := s.wait(t, until); e != 0 {
		return e, true
	}
	return 0, false
}

// recvMsg reads one message, waiting for one unless nonblock; a pending error comes
// first, as Linux has it.
func (s *unixSocket) recvMsg(t *Task, bufs [][]byte, flags uint64, nonblock bool) (r unixRecv) {
	until := deadline(&s.rcvTimeout)
	unixMu.Lock()
	defer unixMu.Unlock()
	if s.typ == sockSeqpacket && s.state != unixConnected {
		return unixRecv{n: -linux.ENOTCONN}
	}
	r.creds = s.passcred
	defer s.changed()
	for len(s.queue) == 0 || s.err != 0 {
		var done bool
		if r.n, done = s.awaitData(t, nonblock, until); done {
			return r
		}
	}
	m := s.queue[0]
	n, ok := scatter(bufs, 0, m.data)
	if !ok {
		r.n = -linux.EFAULT
		return r
	}
	r.n, r.from, r.truncated = int64(n), m.from, n < len(m.data)
	if flags&msgTrunc != 0 {
		r.n = int64(len(m.data))
	}
	if flags&msgPeek != 0 {
		r.rights = dupPassed(m.rights)
	} else {
		r.rights, m.rights = m.rights, nil
		s.pop()
	}
	return r
}

// unixSendAddr reads the address a send names (addr, n bytes) for a datagram socket,
// which sends there; for another type, whose sends take none, it is only not nil.
func unixSendAddr(s *unixSocket, addr, n uint64) ([]byte, int64) {
	if addr == 0 || n == 0 {
		return nil, 0
	}
	if s.netlink != 0 { // only the kernel answers
		_, e := readNetlinkAddr(addr, n)
		return nil, e
	}
	if s.typ != sockDgram {
		return []byte{}, 0
	}
	return readUnixAddr(addr, min(n, 128)) // Linux takes a sockaddr_storage at most
}

func unixSendto(t *Task, f *file, a [6]uint64) int64 {
	b, ok := appSlice(a[1], a[2])
	if !ok {
		return -linux.EFAULT
	}
	to, e := unixSendAddr(f.unix, a[4], a[5])
	if e != 0 {
		return e
	}
	return f.unix.send(t, f, [][]byte{b}, a[3], to, nil)
}

func unixRecvfrom(t *Task, f *file, a [6]uint64) int64 {
	b, ok := appSlice(a[1], a[2])
	if !ok {
		return -linux.EFAULT
	}
	r := f.unix.recv(t, f, [][]byte{b}, a[3])
	dropPassed(r.rights)
	if r.n >= 0 {
		if e := putSockaddr(a[4], a[5], r.from); e != 0 {
			return e
		}
	}
	return r.n
}

func unixSendmsg(t *Task, f *file, a [6]uint64) int64 {
	m, ok := getApp[msghdr](a[1])
	if !ok {
		return -linux.EFAULT
	}
	bufs, e := appBufs(m.iov, m.iovlen)
	if e != 0 {
		return e
	}
	to, e := unixSendAddr(f.unix, m.name, uint64(m.namelen))
	if e != 0 {
		return e
	}
	rights, e := readControl(t.proc, m.control, m.controllen)
	if e != 0 {
		return e
	}
	return f.unix.send(t, f, bufs, a[2], to, rights)
}

func unixRecvmsg(t *Task, f *file, a [6]uint64) int64 {
	m, ok := getApp[msghdr](a[1])
	if !ok {
		return -linux.EFAULT
	}
	bufs, e := appBufs(m.iov, m.iovlen)
	if e != 0 {
		return e
	}
	r := f.unix.recv(t, f, bufs, a[2])
	if r.n < 0 {
		return r.n
	}
	if m.name != 0 {
		if !copyOut(m.name, r.from[:min(int(m.namelen), len(r.from))]) {
			dropPassed(r.rights)
			return -linux.EFAULT
		}
		m.namelen = uint32(len(r.from))
	}
	used, ctrunc, e := putControl(t.proc, m.control, m.controllen, r, a[2]&msgCmsgCloexec != 0)
	if e != 0 {
		return e
	}
	m.controllen, m.flags = used, 0
	if r.truncated {
		m.flags |= msgTrunc
	}
	if ctrunc {
		m.flags |= msgCtrunc
	}
	if !putApp(a[1], m) {
		return -linux.EFAULT
	}
	return r.n
}

// readControl reads a sendmsg's control messages (n bytes at addr) as Linux's
// __scm_send: the descriptors SCM_RIGHTS names, copied and retained (in flight from
// here), and SCM_CREDENTIALS, taken as given (the app is root) but not carried: a
// receiver passing credentials sees the app's own. Other levels are skipped.
func readControl(p *Process, addr, n uint64) ([]passedFile, int64) {
	if n < cmsgHdrLen {
		return nil, 0
	}
	if n > 1<<16 {
		return nil, -linux.ENOBUFS // past net.core.optmem_max
	}
	b := make([]byte, n)
	if !copyIn(addr, b) {
		return nil, -linux.EFAULT
	}
	le := binary.LittleEndian
	var fds []int32
	for off := uint64(0); n-off >= cmsgHdrLen; {
		clen, level, typ := le.Uint64(b[off:]), le.Uint32(b[off+8:]), le.Uint32(b[off+12:])
		if clen < cmsgHdrLen || clen > n-off {
			return nil, -linux.EINVAL
		}
		if level == solSocket {
			switch typ {
			case scmRights:
				cnt := int(clen-cmsgHdrLen) / 4
				if len(fds)+cnt > scmMaxFD {
					return nil, -linux.EINVAL
				}
				for i := range cnt {
					fds = append(fds, int32(le.Uint32(b[off+cmsgHdrLen+4*uint64(i):])))
				}
			case scmCredentials:
				if clen != cmsgHdrLen+12 {
					return nil, -linux.EINVAL
				}
			default:
				return nil, -linux.EINVAL
			}
		}
		off += (clen + 7) &^ 7
	}
	rights := make([]passedFile, 0, len(fds))
	for _, fd := range fds {
		f := p.fd(uint64(int64(fd)))
		if f == nil {
			dropPassed(rights)
			return nil, -linux.EBADF
		}
		pf := passedFile{*f.dup(), p}
		unixMu.Lock()
		carry(&pf.f, 1)
		unixMu.Unlock()
		rights = append(rights, pf)
	}
	return rights, 0
}

// putControl writes a receive's control messages to the app (room bytes at addr): the
// app's credentials where the socket passes them, then the descriptors the message
// carried, installed in p. As Linux's scm_recv, what does not fit is left out (MSG_CTRUNC)
// and its descriptors closed. It returns the bytes it wrote.
func putControl(p *Process, addr, room uint64, r unixRecv, cloexec bool) (used uint64, ctrunc bool, e int64) {
	if addr == 0 {
		room = 0
	}
	le := binary.LittleEndian
	header := func(b []byte, n, typ int) []byte {
		b = le.AppendUint64(b, uint64(cmsgHdrLen+n))
		b = le.AppendUint32(b, solSocket)
		return le.AppendUint32(b, uint32(typ))
	}
	var out []byte
	if r.creds {
		if room < cmsgHdrLen+12 {
			ctrunc = true
		} else {
			out = header(out, 12, scmCredentials)
			out = le.AppendUint32(le.AppendUint32(le.AppendUint32(out, uint32(appCred().pid)), appCred().uid), appCred().gid)
			out = append(out, 0, 0, 0, 0) // CMSG_SPACE: aligned to 8
		}
	}
	if len(r.rights) > 0 {
		fit := 0
		if left := int(room) - len(out); left > cmsgHdrLen {
			fit = (left - cmsgHdrLen) / 4
		}
		fds := make([]int32, 0, len(r.rights))
		for i := range r.rights {
			if len(fds) == fit {
				break
			}
			g := r.rights[i].f
			g.cloexec = cloexec
			fd := p.installFD(&g)
			if fd < 0 {
				break
			}
			unixMu.Lock()
			carry(&g, -1) // now a descriptor's
			unixMu.Unlock()
			fds = append(fds, int32(fd))
		}
		dropPassed(r.rights[len(fds):])
		ctrunc = ctrunc || len(fds) < len(r.rights)
		if len(fds) > 0 {
			out = header(out, 4*len(fds), scmRights)
			for _, fd := range fds {
				out = le.AppendUint32(out, uint32(fd))
			}
			for len(out)%8 != 0 {
				out = append(out, 0)
			}
		}
	}
	used = min(uint64(len(out)), room)
	if !copyOut(addr, out[:used]) {
		return 0, false, -linux.EFAULT
	}
	return used, ctrunc, 0
}

// carriedAs is the key carried counts f under, if f is a host file or tier-0 object.
func carriedAs(f *file) (carriedKey, bool) {
	switch f.kind {
	case kindHost:
		return carriedKey{kindHost, f.handle}, true
	case kindTier0:
		return carriedKey{kindTier0, uint64(f.real)}, true
	}
	return carriedKey{}, false
}

// carry counts f as carried by n more messages (fewer, if n is negative): while one
// carries it, closing descriptors leaves its host handle or tier-0 descriptor open
// (Process.shared). unixMu is held.
func carry(f *file, n int) {
	if k, ok := carriedAs(f); ok {
		if carried[k] += n; carried[k] <= 0 {
			delete(carried, k)
		}
	}
}

// isCarried reports whether a message carries f's host handle or tier-0 descriptor.
func isCarried(f *file) bool {
	k, ok := carriedAs(f)
	if !ok {
		return false
	}
	unixMu.Lock()
	defer unixMu.Unlock()
	return carried[k] > 0
}

// dupPassed copies descriptors a message carries, for a receive that peeks. unixMu is
// held.
func dupPassed(fs []passedFile) []passedFile {
	if fs == nil {
		return nil
	}
	out := make([]passedFile, len(fs))
	for i, pf := range fs {
		out[i] = passedFile{*pf.f.dup(), pf.from}
		carry(&out[i].f, 1)
	}
	return out
}

// dropPassed closes descriptors messages carried and nobody received.
func dropPassed(fs []passedFile) {
	for i := range fs {
		unixMu.Lock()
		carry(&fs[i].f, -1)
		unixMu.Unlock()
		fs[i].from.closeFile(&fs[i].f)
	}
}

func unixGetsockopt(t *Task, f *file, a [6]uint64) int64 {
	s := f.unix
	level, name, val, lenp := a[1], a[2], a[3], a[4]
	if level == solNetlink && s.netlink != 0 {
		return -linux.ENOPROTOOPT
	}
	if level != solSocket {
		return -linux.EOPNOTSUPP // unix sockets have no options of other levels
	}
	switch name {
	case soRcvtimeo, soRcvtimeo2:
		return getTimeout(s.rcvTimeout.Load(), val, lenp)
	case soSndtimeo, soSndtimeo2:
		return getTimeout(s.sndTimeout.Load(), val, lenp)
	}
	n, ok := getApp[uint32](lenp)
	if !ok {
		return -linux.EFAULT
	}
	if int32(n) < 0 {
		return -linux.EINVAL
	}
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	le := binary.LittleEndian
	unixMu.Lock()
	var v int
	var out []byte
	switch name {
	case soType:
		v = s.typ
		if s.netlink != 0 {
			v = s.netlink
		}
	case soDomain:
		v = afUnix
		if s.netlink != 0 {
			v = afNetlink
		}
	case soProtocol:
		v = 0 // NETLINK_ROUTE is 0 too
	case soError:
		v, s.err = int(s.err), 0
		s.changed()
	case soSndbuf:
		v = s.sndbuf
	case soRcvbuf:
		v = s.rcvbuf
	case soPasscred:
		v = b(s.passcred)
	case soReuseaddr:
		v = b(s.reuse)
	case soAcceptconn:
		v = b(s.state == unixListening)
	case soPeercred:
		c := ucred{0, ^uint32(0), ^uint32(0)} // no peer: Linux's answer
		if s.credSet {
			c = appCred()
		}
		out = le.AppendUint32(le.AppendUint32(le.AppendUint32(nil, uint32(c.pid)), c.uid), c.gid)
	default:
		unixMu.Unlock()
		return -linux.ENOPROTOOPT
	}
	unixMu.Unlock()
	if out == nil {
		out = le.AppendUint32(nil, uint32(v))
	}
	n = min(n, uint32(len(out)))
	if !copyOut(val, out[:n]) || !putApp(lenp, n) {
		return -linux.EFAULT
	}
	return 0
}

func unixSetsockopt(t *Task, f *file, a [6]uint64) int64 {
	s := f.unix
	level, name, val, n := a[1], a[2], a[3], a[4]
	if level == solNetlink && s.netlink != 0 {
		return netlinkSetsockopt(name, n)
	}
	if level != solSocket {
		return -linux.EOPNOTSUPP
	}
	switch name {
	case soRcvtimeo, soRcvtimeo2:
		return setTimeout(&s.rcvTimeout, val, n)
	case soSndtimeo, soSndtimeo2:
		return setTimeout(&s.sndTimeout, val, n)
	}
	if n < 4 {
		return -linux.EINVAL
	}
	v, ok := getApp[int32](val)
	if !ok {
		return -linux.EFAULT
	}
	unixMu.Lock()
	defer unixMu.Unlock()
	switch name {
	case soSndbuf: // as Linux: as unsigned, at most net.core.wmem_max, doubled
		s.sndbuf = max(int(min(uint32(v), unixBufDefault))*2, unixMinSndbuf)
	case soRcvbuf:
		s.rcvbuf = max(int(min(uint32(v), unixBufDefault))*2, unixMinRcvbuf)
	case soPasscred:
		s.passcred = v != 0
	case soReuseaddr: // kept, and meaning nothing, as on Linux
		s.reuse = v != 0
	default:
		return -linux.ENOPROTOOPT
	}
	s.changed()
	return 0
}

// unixIoctl serves FIONREAD (a stream's or seqpacket socket's unread bytes, a datagram
// socket's next message's) and SIOCOUTQ (what the socket sent and is not read, as
// charged); FIONBIO is any descriptor's (genericIoctl).
func unixIoctl(f *file, req, arg uint64) int64 {
	const fionread, siocoutq = 0x541b, 0x5411
	s := f.unix
	var v int
	switch req {
	case fionread:
		unixMu.Lock()
		switch {
		case s.state == unixListening:
			unixMu.Unlock()
			return -linux.EINVAL
		case s.typ == sockDgram && len(s.queue) > 0:
			v = len(s.queue[0].data)
		case s.typ != sockDgram:
			for _, m := range s.queue {
				v += len(m.data)
			}
		}
		unixMu.Unlock()
	case siocoutq:
		unixMu.Lock()
		v = s.wmem
		unixMu.Unlock()
	default:
		return -linux.ENOTTY
	}
	if !putApp(arg, int32(v)) {
		return -linux.EFAULT
	}
	return 0
}
