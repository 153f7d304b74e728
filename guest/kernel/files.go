package kernel

import (
	"errors"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

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
	kindPipe // one end of a pipe (pipe.go)
)

type file struct {
	kind    fileKind
	handle  uint64 // kindHost
	real    int    // kindTier0
	offset  uint64
	path    string
	flags   uint64
	cloexec bool
	pipe    *pipe // kindPipe
	readEnd bool
}

// fileRequest asks the monitor's file service; the request lives on the Go heap, which
// does not move.
func fileRequest(r *abi.FileRequest) int64 {
	if _, _, e := syscall.RawSyscall(abi.SysPithFile, uintptr(unsafe.Pointer(r)), 0, 0); e != 0 {
		return -int64(e)
	}
	return r.Result
}

// hostBuffer allocates n bytes for the monitor to fill. It is on the heap, whatever its
// size: a buffer on a goroutine stack could move (stack growth) between taking its
// address and the monitor writing there.
//
//go:noinline
func hostBuffer(n int) []byte { return make([]byte, n) }

// newHostStat allocates a stat buffer for the monitor to fill, on the heap (hostBuffer).
//
//go:noinline
func newHostStat() *syscall.Stat_t { return new(syscall.Stat_t) }

// hostString gives the monitor string p at *addr and *n, in a heap copy: []byte(p) of a
// short path would sit in a stack buffer, which a call before the request could move.
// The copy is referenced only by address there, so the caller keeps the returned slice
// alive until the request is done: defer runtime.KeepAlive(hostString(...)).
func hostString(addr, n *uint64, p string) []byte {
	if p == "" {
		*addr, *n = 0, 0
		return nil
	}
	b := hostBuffer(len(p))
	copy(b, p)
	*addr, *n = uint64(uintptr(unsafe.Pointer(&b[0]))), uint64(len(b))
	return b
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

// absPath resolves a path the app gave relative to dirfd.
func (p *Process) absPath(dirfd uint64, name string) (string, int64) {
	if name == "" {
		return "", -linux.ENOENT
	}
	if path.IsAbs(name) {
		return path.Clean(name), 0
	}
	base := p.cwd
	if int32(dirfd) != -100 { // not AT_FDCWD
		f := p.fd(dirfd)
		if f == nil || f.kind != kindHost {
			return "", -linux.EBADF
		}
		base = f.path
	}
	return path.Join(base, name), 0
}

// appString reads a NUL-terminated string of at most 4 KiB from app memory.
func appString(addr uint64) (string, bool) { return appStringMax(addr, 4096) }

// appStringMax reads a NUL-terminated string of at most max bytes from app memory.
func appStringMax(addr uint64, max int) (string, bool) {
	var b []byte
	for i := 0; i < max; i++ {
		c, ok := getApp[byte](addr + uint64(i))
		if !ok {
			return "", false
		}
		if c == 0 {
			return string(b), true
		}
		b = append(b, c)
	}
	return "", false
}

// appPath reads the path at app address addr and makes it absolute, relative to dirfd.
func (p *Process) appPath(dirfd, addr uint64) (string, int64) {
	name, ok := appString(addr)
	if !ok {
		return "", -linux.EFAULT
	}
	return p.absPath(dirfd, name)
}

// pathRequest asks the monitor for op on the path at app address addr, relative to dirfd.
func pathRequest(t *Task, dirfd, addr, op, flags uint64) int64 {
	p, e := t.proc.appPath(dirfd, addr)
	if e != 0 {
		return e
	}
	r := abi.FileRequest{Op: op, Flags: flags}
	defer runtime.KeepAlive(hostString(&r.Path, &r.PathLen, p))
	return fileRequest(&r)
}

func sysOpenat(t *Task, a [6]uint64) int64 {
	p, e := t.proc.appPath(a[0], a[1])
	if e != 0 {
		return e
	}
	f := &file{path: p, flags: a[2], cloexec: a[2]&syscall.O_CLOEXEC != 0}
	switch p {
	case "/dev/null":
		f.kind = kindNull
	case "/dev/zero":
		f.kind = kindZero
	case "/dev/urandom", "/dev/random":
		f.kind = kindRandom
	default:
		r := abi.FileRequest{Op: abi.FileOpen, Flags: a[2] | a[3]<<32}
		defer runtime.KeepAlive(hostString(&r.Path, &r.PathLen, p))
		h := fileRequest(&r)
		if h < 0 {
			return h
		}
		f.kind, f.handle = kindHost, uint64(h)
	}
	return t.proc.installFD(f)
}

func sysOpen(t *Task, a [6]uint64) int64 {
	return sysOpenat(t, [6]uint64{atFDCWD, a[0], a[1], a[2]})
}

func (f *file) read(buf []byte, off uint64) int64 {
	switch f.kind {
	case kindStdin:
		// pith's standard input, buffered by the monitor; wait for it without holding a
		// vCPU: poll every millisecond.
		for {
			r := abi.FileRequest{Op: abi.FileStdin, Buf: uint64(uintptr(unsafe.Pointer(&buf[0]))), Len: uint64(len(buf))}
			n := fileRequest(&r)
			if n != -linux.EAGAIN || f.flags&syscall.O_NONBLOCK != 0 {
				return n
			}
			time.Sleep(time.Millisecond)
		}
	case kindNull:
		return 0
	case kindZero:
		clear(buf)
		return int64(len(buf))
	case kindRandom:
		if len(buf) == 0 {
			return 0
		}
		n, _, e := syscall.RawSyscall(318 /* getrandom */, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0)
		if e != 0 {
			return -int64(e) // EFAULT for memory the app never mapped
		}
		return int64(n)
	case kindPipe:
		if !f.readEnd {
			return -linux.EBADF
		}
		return f.pipe.read(buf, f.flags&syscall.O_NONBLOCK != 0)
	case kindHost:
		r := abi.FileRequest{Op: abi.FileRead, Handle: f.handle, Offset: off,
			Buf: uint64(uintptr(unsafe.Pointer(&buf[0]))), Len: uint64(len(buf))}
		return fileRequest(&r)
	}
	return -linux.EBADF
}

func (f *file) write(buf []byte, off uint64) int64 {
	switch f.kind {
	case kindStdout, kindStderr:
		w := os.Stdout
		if f.kind == kindStderr {
			w = os.Stderr
		}
		n, err := w.Write(buf)
		if err != nil && n == 0 {
			var e syscall.Errno
			if errors.As(err, &e) {
				return -int64(e) // tier 0's answer: EFAULT for memory the app never mapped
			}
			return -linux.EIO
		}
		return int64(n)
	case kindNull, kindZero, kindRandom:
		return int64(len(buf))
	case kindPipe:
		if f.readEnd {
			return -linux.EBADF
		}
		return f.pipe.write(buf, f.flags&syscall.O_NONBLOCK != 0)
	case kindHost:
		r := abi.FileRequest{Op: abi.FileWrite, Handle: f.handle, Offset: off,
			Buf: uint64(uintptr(unsafe.Pointer(&buf[0]))), Len: uint64(len(buf))}
		return fileRequest(&r)
	}
	return -linux.EBADF
}

// transfer carries out read, write, pread and pwrite: positioned transfers
// (pread/pwrite) use the given offset and only apply to host files; the
// others use and advance the file's own offset.
func transfer(t *Task, a [6]uint64, write, positioned bool) int64 {
	f := t.proc.fd(a[0])
	if f == nil {
		return -linux.EBADF
	}
	if positioned && f.kind != kindHost {
		return -linux.ESPIPE
	}
	if f.kind == kindTier0 {
		nr := uint64(syscall.SYS_READ)
		if write {
			nr = syscall.SYS_WRITE
		}
		return passThrough(nr)(t, [6]uint64{uint64(f.real), a[1], a[2]})
	}
	if !appRange(a[1], a[2]) {
		return -linux.EFAULT
	}
	if a[2] == 0 {
		return 0
	}
	off := f.offset
	if positioned {
		off = a[3]
	}
	var n int64
	if write {
		n = f.write(appBytes(a[1], a[2]), off)
	} else {
		n = f.read(appBytes(a[1], a[2]), off)
	}
	if n > 0 && !positioned && f.kind == kindHost {
		f.offset += uint64(n)
	}
	return n
}

func sysRead(t *Task, a [6]uint64) int64   { return transfer(t, a, false, false) }
func sysWrite(t *Task, a [6]uint64) int64  { return transfer(t, a, true, false) }
func sysPread(t *Task, a [6]uint64) int64  { return transfer(t, a, false, true) }
func sysPwrite(t *Task, a [6]uint64) int64 { return transfer(t, a, true, true) }

func sysLseek(t *Task, a [6]uint64) int64 {
	f := t.proc.fd(a[0])
	if f == nil {
		return -linux.EBADF
	}
	if f.kind != kindHost {
		return -linux.ESPIPE
	}
	off := int64(a[1])
	switch a[2] {
	case 0:
	case 1:
		off += int64(f.offset)
	case 2:
		var st syscall.Stat_t
		if e := hostStat(f.handle, "", &st, false); e != 0 {
			return e
		}
		off += st.Size
	default:
		return -linux.EINVAL
	}
	if off < 0 {
		return -linux.EINVAL
	}
	f.offset = uint64(off)
	return off
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
	switch f.kind {
	case kindPipe:
		f.pipe.release(f.readEnd)
	case kindTier0:
		return passThrough(syscall.SYS_CLOSE)(t, [6]uint64{uint64(f.real)})
	case kindHost:
		if !p.shared(f) {
			r := abi.FileRequest{Op: abi.FileClose, Handle: f.handle}
			fileRequest(&r)
		}
	}
	return 0
}

// shared reports whether another descriptor (a dup) still uses f's host handle.
func (p *Process) shared(f *file) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range p.fds {
		if g.kind == kindHost && g.handle == f.handle {
			return true
		}
	}
	return false
}

func hostStat(handle uint64, p string, st *syscall.Stat_t, nofollow bool) int64 {
	hs := newHostStat() // st may be on a stack, which can move
	defer func() { *st = *hs }()
	r := abi.FileRequest{Op: abi.FileStat, Handle: handle,
		Buf: uint64(uintptr(unsafe.Pointer(hs))), Len: uint64(unsafe.Sizeof(*hs))}
	if handle == 0 {
		defer runtime.KeepAlive(hostString(&r.Path, &r.PathLen, p))
		if nofollow {
			r.Flags = 1
		}
	}
	return fileRequest(&r)
}

// putStat writes st to app memory at addr (struct stat has the host's layout: Linux x86-64).
func putStat(addr uint64, st *syscall.Stat_t) int64 {
	if !putApp(addr, *st) {
		return -linux.EFAULT
	}
	return 0
}

func sysFstat(t *Task, a [6]uint64) int64 {
	f := t.proc.fd(a[0])
	if f == nil {
		return -linux.EBADF
	}
	var st syscall.Stat_t
	switch f.kind {
	case kindHost:
		if e := hostStat(f.handle, "", &st, false); e != 0 {
			return e
		}
	default:
		st.Mode = syscall.S_IFCHR | 0o666
		st.Blksize = 4096
	}
	return putStat(a[1], &st)
}

// sysNewfstatatTo stats a path into st, for access(2): whether it exists is the answer.
func sysNewfstatatTo(t *Task, dirfd, pathAddr uint64, st *syscall.Stat_t) int64 {
	p, e := t.proc.appPath(dirfd, pathAddr)
	if e != 0 {
		return e
	}
	switch p {
	case "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random":
		return 0
	}
	return hostStat(0, p, st, false)
}

func sysNewfstatat(t *Task, a [6]uint64) int64 {
	const atEmptyPath, atSymlinkNofollow = 0x1000, 0x100
	name, ok := appString(a[1])
	if !ok {
		return -linux.EFAULT
	}
	if name == "" && a[3]&atEmptyPath != 0 {
		return sysFstat(t, [6]uint64{a[0], a[2]})
	}
	p, e := t.proc.absPath(a[0], name)
	if e != 0 {
		return e
	}
	var st syscall.Stat_t
	switch p {
	case "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random":
		st.Mode = syscall.S_IFCHR | 0o666
	default:
		// A trailing slash names the directory a link leads to, so it is followed.
		nofollow := a[3]&atSymlinkNofollow != 0 && !strings.HasSuffix(name, "/")
		if e := hostStat(0, p, &st, nofollow); e != 0 {
			return e
		}
	}
	return putStat(a[2], &st)
}

func sysStat(t *Task, a [6]uint64) int64 {
	return sysNewfstatat(t, [6]uint64{atFDCWD, a[0], a[1], 0})
}

func sysLstat(t *Task, a [6]uint64) int64 {
	return sysNewfstatat(t, [6]uint64{atFDCWD, a[0], a[1], 0x100})
}

func sysFaccessat(t *Task, a [6]uint64) int64 {
	var st syscall.Stat_t
	return sysNewfstatatTo(t, a[0], a[1], &st)
}

func sysGetdents64(t *Task, a [6]uint64) int64 {
	f := t.proc.fd(a[0])
	if f == nil {
		return -linux.EBADF
	}
	if f.kind != kindHost {
		return -20 // ENOTDIR
	}
	if !appRange(a[1], a[2]) {
		return -linux.EFAULT
	}
	r := abi.FileRequest{Op: abi.FileReaddir, Handle: f.handle, Buf: a[1], Len: a[2]}
	return fileRequest(&r)
}

func sysReadlinkat(t *Task, a [6]uint64) int64 {
	p, e := t.proc.appPath(a[0], a[1])
	if e != 0 {
		return e
	}
	if !appRange(a[2], a[3]) {
		return -linux.EFAULT
	}
	if p == "/proc/self/exe" {
		n := copy(appBytes(a[2], a[3]), t.proc.exe)
		return int64(n)
	}
	buf := make([]byte, a[3])
	if len(buf) == 0 {
		return -linux.EINVAL
	}
	r := abi.FileRequest{Op: abi.FileReadlink, Buf: uint64(uintptr(unsafe.Pointer(&buf[0]))), Len: a[3]}
	defer runtime.KeepAlive(hostString(&r.Path, &r.PathLen, p))
	n := fileRequest(&r)
	if n > 0 {
		copy(appBytes(a[2], uint64(n)), buf[:n])
	}
	return n
}

func sysSymlinkat(t *Task, a [6]uint64) int64 {
	target, ok := appString(a[0])
	name, ok2 := appString(a[2])
	if !ok || !ok2 {
		return -linux.EFAULT
	}
	p, e := t.proc.absPath(a[1], name)
	if e != 0 {
		return e
	}
	r := abi.FileRequest{Op: abi.FileSymlink}
	defer runtime.KeepAlive(hostString(&r.Path, &r.PathLen, p))
	defer runtime.KeepAlive(hostString(&r.Buf, &r.Len, target))
	return fileRequest(&r)
}

func sysRenameat(t *Task, a [6]uint64) int64 {
	from, ok := appString(a[1])
	to, ok2 := appString(a[3])
	if !ok || !ok2 {
		return -linux.EFAULT
	}
	pf, e := t.proc.absPath(a[0], from)
	if e != 0 {
		return e
	}
	pt, e := t.proc.absPath(a[2], to)
	if e != 0 {
		return e
	}
	r := abi.FileRequest{Op: abi.FileRename}
	defer runtime.KeepAlive(hostString(&r.Path, &r.PathLen, pf))
	defer runtime.KeepAlive(hostString(&r.Buf, &r.Len, pt))
	return fileRequest(&r)
}

func sysChdir(t *Task, a [6]uint64) int64 {
	p, e := t.proc.appPath(atFDCWD, a[0])
	if e != 0 {
		return e
	}
	var st syscall.Stat_t
	if e := hostStat(0, p, &st, false); e != 0 {
		return e
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return -20 // ENOTDIR
	}
	// The working directory is where links led, as on Linux: ".." climbs from there.
	buf := hostBuffer(4096)
	r := abi.FileRequest{Op: abi.FileCanonical, Buf: uint64(uintptr(unsafe.Pointer(&buf[0]))), Len: uint64(len(buf))}
	defer runtime.KeepAlive(hostString(&r.Path, &r.PathLen, p))
	n := fileRequest(&r)
	if n < 0 {
		return n
	}
	p = string(buf[:n])
	t.proc.mu.Lock()
	t.proc.cwd = p
	t.proc.mu.Unlock()
	return 0
}

func sysFchdir(t *Task, a [6]uint64) int64 {
	f := t.proc.fd(a[0])
	if f == nil || f.kind != kindHost {
		return -linux.EBADF
	}
	t.proc.mu.Lock()
	t.proc.cwd = f.path
	t.proc.mu.Unlock()
	return 0
}

func sysFtruncate(t *Task, a [6]uint64) int64 {
	f := t.proc.fd(a[0])
	if f == nil || f.kind != kindHost {
		return -linux.EBADF
	}
	r := abi.FileRequest{Op: abi.FileTruncate, Handle: f.handle, Offset: a[1]}
	return fileRequest(&r)
}

func sysGetcwd(t *Task, a [6]uint64) int64 {
	cwd := t.proc.cwd
	if uint64(len(cwd))+1 > a[1] {
		return -34 // ERANGE
	}
	if !copyOut(a[0], append([]byte(cwd), 0)) {
		return -linux.EFAULT
	}
	return int64(len(cwd) + 1)
}

func sysMkdirat(t *Task, a [6]uint64) int64 {
	return pathRequest(t, a[0], a[1], abi.FileMkdir, a[2])
}

func sysUnlinkat(t *Task, a [6]uint64) int64 {
	dir := uint64(0)
	if a[2]&0x200 != 0 { // AT_REMOVEDIR
		dir = 1
	}
	return pathRequest(t, a[0], a[1], abi.FileUnlink, dir)
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
		case kindHost, kindPipe:
			return int64(f.flags & 0xffffffff &^ syscall.O_CLOEXEC)
		}
		return syscall.O_RDWR
	case syscall.F_SETFL:
		f.flags = f.flags&^syscall.O_NONBLOCK | a[2]&syscall.O_NONBLOCK
		return 0
	case syscall.F_DUPFD, syscall.F_DUPFD_CLOEXEC:
		f.retainPipe()
		g := *f
		g.cloexec = a[1] == syscall.F_DUPFD_CLOEXEC
		return t.proc.installFD(&g)
	}
	return -linux.EINVAL
}

// retainPipe counts one more descriptor for f's pipe end, if it is one.
func (f *file) retainPipe() {
	if f.kind == kindPipe {
		f.pipe.retain(f.readEnd)
	}
}

func sysDup(t *Task, a [6]uint64) int64 {
	f := t.proc.fd(a[0])
	if f == nil {
		return -linux.EBADF
	}
	f.retainPipe()
	g := *f
	g.cloexec = false
	return t.proc.installFD(&g)
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
	f.retainPipe()
	g := *f
	g.cloexec = a[2]&syscall.O_CLOEXEC != 0
	p := t.proc
	p.mu.Lock()
	p.fds[int(a[1])] = &g
	p.mu.Unlock()
	return int64(a[1])
}

// tier0FD wraps a descriptor tier 0 made for the app.
func (p *Process) tier0FD(real int64) int64 {
	if real < 0 {
		return real
	}
	return p.installFD(&file{kind: kindTier0, real: int(real)})
}

func sysEpollCtl(t *Task, a [6]uint64) int64 {
	ep, f := t.proc.fd(a[0]), t.proc.fd(a[2])
	if ep == nil || f == nil || ep.kind != kindTier0 || f.kind != kindTier0 {
		return -linux.EBADF
	}
	return passThrough(syscall.SYS_EPOLL_CTL)(t, [6]uint64{uint64(ep.real), a[1], uint64(f.real), a[3]})
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

func sysFchmodat(t *Task, a [6]uint64) int64 {
	return pathRequest(t, a[0], a[1], abi.FileChmod, a[2])
}

// sysMmap maps memory; tier 0 serves anonymous mappings itself. A file mapping is a copy
// of the file's bytes, made when mapped: enough for the programs that map files to read
// them. A shared writable mapping (Go's linker writes its output through one) is written
// back to the file at munmap, msync and exit.
func sysMmap(t *Task, a [6]uint64) int64 {
	const (
		protWrite    = 2
		mapShared    = 1
		mapPrivate   = 2
		mapAnonymous = 0x20
	)
	pass := passThrough(syscall.SYS_MMAP)
	if a[3]&syscall.MAP_FIXED != 0 { // what it replaces of a shared mapping leaves it, as munmap
		t.proc.syncShared(a[0], a[0]+a[1], true)
	}
	if a[3]&mapAnonymous != 0 {
		return pass(t, a)
	}
	f := t.proc.fd(a[4])
	if f == nil {
		return -linux.EBADF
	}
	if f.kind != kindHost {
		return -19 // ENODEV
	}
	if a[5]&0xfff != 0 {
		return -linux.EINVAL
	}
	var st syscall.Stat_t
	if e := hostStat(f.handle, "", &st, false); e != 0 {
		return e
	}
	var m sharedMapping
	if a[3]&mapShared != 0 && a[2]&protWrite != 0 {
		// Its own handle: the app may close the descriptor before unmapping.
		r := abi.FileRequest{Op: abi.FileOpen, Flags: syscall.O_RDWR}
		defer runtime.KeepAlive(hostString(&r.Path, &r.PathLen, f.path))
		if m.handle = uint64(fileRequest(&r)); int64(m.handle) < 0 {
			return int64(m.handle)
		}
	}
	addr := pass(t, [6]uint64{a[0], a[1], a[2] | protWrite, a[3]&^mapShared | mapPrivate | mapAnonymous, ^uint64(0), 0})
	if addr < 0 {
		if m.handle != 0 {
			fileRequest(&abi.FileRequest{Op: abi.FileClose, Handle: m.handle})
		}
		return addr
	}
	// Fill it from the file; past its end the mapping reads as zeros, as on Linux.
	fileLen := uint64(0)
	if uint64(st.Size) > a[5] {
		fileLen = min(a[1], uint64(st.Size)-a[5])
	}
	// Through a copy: the monitor cannot write pages of the new mapping not yet backed.
	buf := hostBuffer(int(min(fileLen, 1<<20)))
	for done := uint64(0); done < fileLen; {
		n := f.read(buf[:min(fileLen-done, uint64(len(buf)))], a[5]+done)
		if n <= 0 {
			break
		}
		copy(appBytes(uint64(addr)+done, uint64(n)), buf[:n])
		done += uint64(n)
	}
	if a[2]&protWrite == 0 {
		passThrough(syscall.SYS_MPROTECT)(t, [6]uint64{uint64(addr), a[1], a[2]})
	}
	if m.handle != 0 {
		m.addr, m.length, m.off, m.fileLen = uint64(addr), a[1], a[5], fileLen
		p := t.proc
		p.mu.Lock()
		p.sharedMaps = append(p.sharedMaps, m)
		p.mu.Unlock()
		syscall.RawSyscall(abi.SysPithUnmapToTier1, 1, 0, 0)
	}
	return addr
}

// sharedMapping is a shared writable file mapping, written back to the file later.
type sharedMapping struct {
	addr, length uint64
	handle       uint64 // the mapping's own, opened read-write
	off          uint64 // the file offset at addr
	fileLen      uint64 // bytes of the mapping the file holds: only those are written back
}

// writeBack writes the mapping's bytes in [lo, hi) to its file.
func (m *sharedMapping) writeBack(lo, hi uint64) {
	defer catchAppFault(nil) // the app unmapped what it mapped: nothing more to write
	lo, hi = max(lo, m.addr), min(hi, m.addr+m.fileLen)
	buf := hostBuffer(int(min(hi-lo, 1<<20)))
	for lo < hi {
		// Through a copy: reading here backs any page the app never touched.
		n := uint64(copy(buf, appBytes(lo, min(hi-lo, uint64(len(buf))))))
		r := abi.FileRequest{Op: abi.FileWrite, Handle: m.handle, Offset: m.off + lo - m.addr,
			Buf: uint64(uintptr(unsafe.Pointer(&buf[0]))), Len: n}
		if fileRequest(&r) <= 0 {
			return
		}
		lo += n
	}
}

// syncShared writes back what the app's shared file mappings hold in [lo, hi); with
// unmap, the range leaves them.
func (p *Process) syncShared(lo, hi uint64, unmap bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var kept []sharedMapping
	for _, m := range p.sharedMaps {
		end := m.addr + m.length
		if hi <= m.addr || lo >= end {
			kept = append(kept, m)
			continue
		}
		m.writeBack(lo, hi)
		if !unmap {
			kept = append(kept, m)
			continue
		}
		if lo > m.addr { // the part below stays mapped
			below := m
			below.length = lo - m.addr
			below.fileLen = min(m.fileLen, below.length)
			kept = append(kept, below)
		}
		if hi < end { // and the part above
			above := m
			above.addr, above.length, above.off = hi, end-hi, m.off+hi-m.addr
			above.fileLen = m.fileLen - min(m.fileLen, hi-m.addr)
			kept = append(kept, above)
		}
		if lo <= m.addr && hi >= end && !p.handleMapped(m.handle, kept) {
			fileRequest(&abi.FileRequest{Op: abi.FileClose, Handle: m.handle})
		}
	}
	p.sharedMaps = kept
	if len(kept) == 0 {
		syscall.RawSyscall(abi.SysPithUnmapToTier1, 0, 0, 0)
	}
}

func (p *Process) handleMapped(h uint64, maps []sharedMapping) bool {
	for _, m := range maps {
		if m.handle == h {
			return true
		}
	}
	return false
}

func sysMunmap(t *Task, a [6]uint64) int64 {
	t.proc.syncShared(a[0], a[0]+a[1], true)
	return passThrough(syscall.SYS_MUNMAP)(t, a)
}

func sysMsync(t *Task, a [6]uint64) int64 {
	t.proc.syncShared(a[0], a[0]+a[1], false)
	return 0
}

// sysFallocate reserves (or, by mode, punches or zeroes) space in a host file.
func sysFallocate(t *Task, a [6]uint64) int64 {
	f := t.proc.fd(a[0])
	if f == nil {
		return -linux.EBADF
	}
	if f.kind != kindHost {
		return -29 // ESPIPE
	}
	args := hostBuffer(24)
	for i, v := range a[1:4] {
		*(*uint64)(unsafe.Pointer(&args[8*i])) = v
	}
	r := abi.FileRequest{Op: abi.FileFallocate, Handle: f.handle, Buf: uint64(uintptr(unsafe.Pointer(&args[0]))), Len: 24}
	defer runtime.KeepAlive(args) // referenced by address only
	return fileRequest(&r)
}

// sysUtimensat sets a file's access and modification times.
func sysUtimensat(t *Task, a [6]uint64) int64 {
	const atSymlinkNofollow = 0x100
	var p string
	if a[1] == 0 { // futimens: the descriptor's own file
		f := t.proc.fd(a[0])
		if f == nil || f.kind != kindHost {
			return -linux.EBADF
		}
		p = f.path
	} else {
		var e int64
		if p, e = t.proc.appPath(a[0], a[1]); e != 0 {
			return e
		}
	}
	times := hostBuffer(32)
	if a[2] != 0 {
		if !copyIn(a[2], times) {
			return -linux.EFAULT
		}
	} else {
		const utimeNow = 1<<30 - 1
		*(*int64)(unsafe.Pointer(&times[8])) = utimeNow
		*(*int64)(unsafe.Pointer(&times[24])) = utimeNow
	}
	r := abi.FileRequest{Op: abi.FileUtimes, Buf: uint64(uintptr(unsafe.Pointer(&times[0]))), Len: 32, Flags: a[3] & atSymlinkNofollow}
	defer runtime.KeepAlive(times) // referenced by address only
	defer runtime.KeepAlive(hostString(&r.Path, &r.PathLen, p))
	return fileRequest(&r)
}

// sysFlock takes advisory locks on the host file, so that they hold against the programs
// the app starts (each a unikernel of its own) and host processes too. A lock held
// elsewhere is waited for here, without holding a vCPU.
func sysFlock(t *Task, a [6]uint64) int64 {
	const lockNB = 4
	f := t.proc.fd(a[0])
	if f == nil {
		return -linux.EBADF
	}
	if f.kind != kindHost {
		return 0
	}
	for {
		r := abi.FileRequest{Op: abi.FileFlock, Handle: f.handle, Flags: a[1]}
		if e := fileRequest(&r); e != -linux.EAGAIN || a[1]&lockNB != 0 {
			return e
		}
		time.Sleep(time.Millisecond)
	}
}

func sysFchmod(t *Task, a [6]uint64) int64 {
	f := t.proc.fd(a[0])
	if f == nil || f.kind != kindHost {
		return -linux.EBADF
	}
	r := abi.FileRequest{Op: abi.FileChmod, Flags: a[1]}
	defer runtime.KeepAlive(hostString(&r.Path, &r.PathLen, f.path))
	return fileRequest(&r)
}

// sysSendfile copies between descriptors through a buffer (sendfile(2)).
func sysSendfile(t *Task, a [6]uint64) int64 {
	out, in := t.proc.fd(a[0]), t.proc.fd(a[1])
	if out == nil || in == nil {
		return -linux.EBADF
	}
	count := min(a[3], 1<<20)
	if count == 0 {
		return 0
	}
	buf := make([]byte, count)
	off := in.offset
	if a[2] != 0 {
		var ok bool
		if off, ok = getApp[uint64](a[2]); !ok {
			return -linux.EFAULT
		}
	}
	n := in.read(buf, off)
	if n <= 0 {
		return n
	}
	w := out.write(buf[:n], out.offset)
	if w < 0 {
		return w
	}
	if out.kind == kindHost {
		out.offset += uint64(w)
	}
	if a[2] != 0 {
		*(*uint64)(appPtr(a[2])) = off + uint64(w)
	} else if in.kind == kindHost {
		in.offset += uint64(w)
	}
	return w
}

// AppSpec asks the monitor for the app to run: tier 1's run arguments and the app's
// environment (abi.FileAppSpec). In a warm VM it returns when pith is given the app.
func AppSpec() (args, env []string, err error) {
	n := uint64(64 << 10)
	for {
		buf := hostBuffer(int(n))
		r := &abi.FileRequest{Op: abi.FileAppSpec, Buf: uint64(uintptr(unsafe.Pointer(&buf[0]))), Len: n}
		res := fileRequest(r)
		if res == -int64(syscall.ERANGE) && r.Len > n && r.Len <= 1<<30 {
			n = r.Len
			continue
		}
		if res < 0 {
			return nil, nil, syscall.Errno(-res)
		}
		strs := strings.Split(string(buf[:res]), "\x00")
		strs = strs[:len(strs)-1] // each string ends with a NUL
		if len(strs) == 0 {
			return nil, nil, errors.New("empty app spec from the monitor")
		}
		count, err := strconv.Atoi(strs[0])
		if err != nil || count < 0 || count > len(strs)-1 {
			return nil, nil, errors.New("malformed app spec from the monitor")
		}
		return strs[1 : 1+count], strs[1+count:], nil
	}
}
