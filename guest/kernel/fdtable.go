package kernel

import (
	"encoding/binary"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
)

// The app's file descriptors. Host files come from the monitor's file service (one exit
// per operation); the standard streams are tier 1's own; the netpoller's epoll instances
// and eventfds are tier 0's, under their own numbers, translated here.

type fileKind int

const (
	kindStdin fileKind = iota
	kindStdout
	kindStderr
	kindHost  // a host file or directory, by the monitor's handle
	kindTier0 // an epoll instance or eventfd, by tier 0's descriptor
	kindNull
	kindZero
	kindRandom
	kindPipe   // one end of a pipe (pipe.go)
	kindSocket // a socket on netstack (socket.go)
	kindUnix   // an AF_UNIX socket (unix.go)
	kindProc   // a file or directory of /proc, made when opened (procfs.go)
)

type file struct {
	kind    fileKind
	handle  uint64       // kindHost
	real    int          // kindTier0
	desc    *description // what its dups share; nil until a dup or a move of the offset
	path    string
	flags   uint64
	cloexec bool
	pipe    *pipe // kindPipe
	readEnd bool
	sock    *socket     // kindSocket
	unix    *unixSocket // kindUnix
	proc    *procNode   // kindProc
	ready   uintptr     // kindUnix, kindPipe: the descriptor's own readiness descriptor in tier 0, once epoll watches it; 0: none
}

func (p *Process) installFD(f *file) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	for fd := 0; fd < 1<<20; fd++ {
		if p.fds[fd] == nil {
			p.fds[fd] = f
			return int64(fd)
		}
	}
	return -24 // EMFILE
}

func (p *Process) fd(fd uint64) *file {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fds[int(fd)]
}

func sysClose(t *Task, a [6]uint64) int64 {
	p := t.proc
	p.mu.Lock()
	f := p.fds[int(a[0])]
	delete(p.fds, int(a[0]))
	p.mu.Unlock()
	if f == nil {
		return -linux.EBADF
	}
	return p.closeFile(f)
}

// sysCloseRange closes the descriptors from a[0] to a[1], or with CLOSE_RANGE_CLOEXEC
// marks them close-on-exec (CLOSE_RANGE_UNSHARE: the table is the process's own).
func sysCloseRange(t *Task, a [6]uint64) int64 {
	const unshare, cloexec = 2, 4
	first, last, flags := uint32(a[0]), uint32(a[1]), a[2]
	if flags&^(unshare|cloexec) != 0 || first > last {
		return -linux.EINVAL
	}
	p := t.proc
	p.mu.Lock()
	var closing []*file
	for fd, f := range p.fds {
		if uint32(fd) < first || uint32(fd) > last {
			continue
		}
		if flags&cloexec != 0 {
			f.cloexec = true
			continue
		}
		delete(p.fds, fd)
		closing = append(closing, f)
	}
	p.mu.Unlock()
	for _, f := range closing {
		p.closeFile(f)
	}
	return 0
}

// closeFile closes f, a descriptor of p's no longer in its table: its pipe end or socket
// reference, and the host handle or tier-0 descriptor behind it unless another
// descriptor still has it.
func (p *Process) closeFile(f *file) int64 {
	switch f.kind {
	case kindTier0:
		if !p.shared(f) {
			return passThrough(syscall.SYS_CLOSE)(nil, [6]uint64{uint64(f.real)})
		}
	case kindHost:
		if !p.shared(f) {
			r := abi.FileRequest{Op: abi.FileClose, Handle: f.handle}
			fileRequest(&r)
		}
	default:
		f.release()
	}
	return 0
}

// release drops f's reference to its pipe end or socket, if it holds one.
func (f *file) release() {
	switch f.kind {
	case kindPipe:
		f.pipe.release(f.readEnd, f.ready)
	case kindSocket:
		f.sock.release()
	case kindUnix:
		f.unix.release(f.ready)
	}
}

// shared reports whether another descriptor (a dup, or in a vfork child its parent's,
// which it is a copy of), or a message in flight (unix.go), still uses f's host handle or
// tier-0 descriptor. A vfork child closing what it was given (os/exec moving descriptors
// into place with dup2) must not close its parent's netpoller.
func (p *Process) shared(f *file) bool {
	return p.holds(f) || isCarried(f) || p.vfork != nil && p.vfork.parent.holds(f)
}

// holds reports whether one of p's descriptors has f's host handle or tier-0 descriptor.
func (p *Process) holds(f *file) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range p.fds {
		if g.kind == f.kind && (f.kind == kindHost && g.handle == f.handle || f.kind == kindTier0 && g.real == f.real) {
			return true
		}
	}
	return false
}

func sysFcntl(t *Task, a [6]uint64) int64 {
	f := t.proc.fd(a[0])
	if f == nil {
		return -linux.EBADF
	}
	switch a[1] {
	case syscall.F_GETFD:
		if f.cloexec {
			return syscall.FD_CLOEXEC
		}
		return 0
	case syscall.F_SETFD:
		f.cloexec = a[2]&syscall.FD_CLOEXEC != 0
		return 0
	case syscall.F_GETFL:
		switch f.kind {
		case kindHost, kindPipe, kindSocket, kindUnix:
			return int64(f.flags & 0xffffffff &^ syscall.O_CLOEXEC)
		}
		return syscall.O_RDWR
	case syscall.F_SETFL:
		f.flags = f.flags&^syscall.O_NONBLOCK | a[2]&syscall.O_NONBLOCK
		return 0
	case syscall.F_DUPFD, syscall.F_DUPFD_CLOEXEC:
		g := f.dup()
		g.cloexec = a[1] == syscall.F_DUPFD_CLOEXEC
		return t.proc.installFD(g)
	case unix.F_GETLK, unix.F_SETLK, unix.F_SETLKW, unix.F_OFD_GETLK, unix.F_OFD_SETLK, unix.F_OFD_SETLKW:
		return recordLock(t, f, a[1], a[2])
	case unix.F_GETPIPE_SZ, unix.F_SETPIPE_SZ:
		if f.kind != kindPipe {
			return -linux.EBADF // as Linux for what is no pipe
		}
		if a[1] == unix.F_SETPIPE_SZ {
			return f.pipe.resize(uint64(uint32(a[2])))
		}
		f.pipe.mu.Lock()
		defer f.pipe.mu.Unlock()
		return int64(f.pipe.size)
	}
	return -linux.EINVAL
}

// recordLock serves fcntl's record locks (lockf, SQLite's) on the host file, so that they
// hold against the programs the app starts and host processes, as flock does. A lock held
// elsewhere is waited for here (F_SETLKW, waitForLock). Other descriptors take any lock,
// none held against them.
func recordLock(t *Task, f *file, cmd, arg uint64) int64 {
	lk, ok := appSlice(arg, abi.FlockSize)
	if !ok {
		return -linux.EFAULT
	}
	getting := cmd == unix.F_GETLK || cmd == unix.F_OFD_GETLK
	if f.kind != kindHost {
		if getting {
			binary.LittleEndian.PutUint16(lk, unix.F_UNLCK)
		}
		return 0
	}
	b := hostBuffer(abi.FlockSize)
	copy(b, lk)
	try := func(cmd uint64) int64 {
		r := abi.FileRequest{Op: abi.FileRecordLock, Handle: f.handle, Flags: cmd, Buf: uint64(uintptr(unsafe.Pointer(&b[0]))), Len: abi.FlockSize}
		return fileRequest(&r)
	}
	switch cmd {
	case unix.F_SETLKW:
		return waitForLock(t, func() int64 { return try(unix.F_SETLK) })
	case unix.F_OFD_SETLKW:
		return waitForLock(t, func() int64 { return try(unix.F_OFD_SETLK) })
	}
	e := try(cmd)
	if e == 0 && getting {
		copy(lk, b)
	}
	return e
}

// waitForLock makes try, a lock request that does not wait, until it is not refused for
// a lock held elsewhere, looking again every millisecond without holding a vCPU.
func waitForLock(t *Task, try func() int64) int64 {
	for {
		if e := try(); e != -linux.EAGAIN && e != -linux.EACCES {
			return e
		}
		if !t.sleep(time.Millisecond) {
			return -errRestart
		}
	}
}

// description is what the descriptors dup'd from one open share, as Linux's open file
// description: the offset (shells read a file line by line through dups of one
// descriptor: exec 3<FILE; read a <&3; read b <&3).
type description struct {
	offset uint64
}

// pos is f's offset: a host file's is the host's own (atCurrent).
func (f *file) pos() uint64 {
	if f.kind == kindHost {
		return atCurrent
	}
	if f.desc == nil {
		return 0
	}
	return f.desc.offset
}

// setPos moves f's offset, and its dups'.
func (f *file) setPos(off uint64) {
	if f.desc == nil {
		f.desc = &description{}
	}
	f.desc.offset = off
}

// dup is another descriptor of f's file: a copy that shares its offset and holds one more
// reference to its pipe end or socket.
func (f *file) dup() *file {
	if f.desc == nil {
		f.desc = &description{}
	}
	g := *f
	switch g.kind {
	case kindPipe:
		g.pipe.retain(g.readEnd)
		g.ready = 0 // it gets its own
	case kindSocket:
		g.sock.refs.Add(1)
	case kindUnix:
		g.unix.refs.Add(1)
		g.ready = 0
	}
	return &g
}

func sysDup(t *Task, a [6]uint64) int64 {
	f := t.proc.fd(a[0])
	if f == nil {
		return -linux.EBADF
	}
	g := f.dup()
	g.cloexec = false
	return t.proc.installFD(g)
}

func sysDup3(t *Task, a [6]uint64) int64 {
	f := t.proc.fd(a[0])
	if f == nil || a[1] > 1<<20 {
		return -linux.EBADF
	}
	if a[0] == a[1] {
		return -linux.EINVAL
	}
	sysClose(t, [6]uint64{a[1]})
	g := f.dup()
	g.cloexec = a[2]&syscall.O_CLOEXEC != 0
	p := t.proc
	p.mu.Lock()
	p.fds[int(a[1])] = g
	p.mu.Unlock()
	return int64(a[1])
}

// tier0FD wraps a descriptor tier 0 made for the app.
func (p *Process) tier0FD(real int64, cloexec bool) int64 {
	if real < 0 {
		return real
	}
	return p.installFD(&file{kind: kindTier0, real: int(real), cloexec: cloexec})
}

func sysEpollCtl(t *Task, a [6]uint64) int64 {
	ep, f := t.proc.fd(a[0]), t.proc.fd(a[2])
	if ep == nil || f == nil || ep.kind != kindTier0 {
		return -linux.EBADF
	}
	var real uint64
	switch f.kind {
	case kindTier0:
		real = uint64(f.real)
	case kindSocket:
		real = uint64(f.sock.readyFD) // its events, which tier 1 keeps there
	case kindUnix, kindPipe:
		var fd uintptr
		var e int64
		if f.kind == kindUnix {
			fd, e = f.unix.readyFD(f)
		} else {
			fd, e = f.pipe.readyFD(f)
		}
		if e != 0 {
			return e
		}
		real = uint64(fd)
	default:
		return -linux.EPERM // as Linux for a regular file; the netpoller then reads it blocking
	}
	return passThrough(syscall.SYS_EPOLL_CTL)(t, [6]uint64{uint64(ep.real), a[1], real, a[3]})
}

func sysEpollWait(nr uint64) handler {
	return func(t *Task, a [6]uint64) int64 {
		ep := t.proc.fd(a[0])
		if ep == nil || ep.kind != kindTier0 {
			return -linux.EBADF
		}
		a[0] = uint64(ep.real)
		return passThrough(nr)(t, a)
	}
}
