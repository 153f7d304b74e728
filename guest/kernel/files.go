package kernel

import (
	"errors"
	"math"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
)

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
	name, ok := appString(a[1])
	if !ok {
		return -linux.EFAULT
	}
	p, e := t.proc.absPath(a[0], name)
	if e != 0 {
		return e
	}
	if rel, ok := procRel(p); ok && p != "/proc/self/exe" { // the app's own file: the monitor opens it
		return procOpen(t, rel, a[2])
	}
	f := &file{path: p, flags: a[2], cloexec: a[2]&syscall.O_CLOEXEC != 0}
	openFlags := a[2]
	if strings.HasSuffix(name, "/") || strings.HasSuffix(name, "/.") || strings.HasSuffix(name, "/..") || name == "." || name == ".." {
		// The name ends in a directory, which the clean path p no longer shows: with
		// O_CREAT Linux answers EISDIR whatever is there (Python's shutil.copyfile to
		// "missing/" counts on it); without, what is there must be a directory.
		if openFlags&syscall.O_CREAT != 0 {
			return -linux.EISDIR
		}
		openFlags |= syscall.O_DIRECTORY
	}
	switch p {
	case "/dev/null":
		f.kind = kindNull
	case "/dev/zero":
		f.kind = kindZero
	case "/dev/urandom", "/dev/random":
		f.kind = kindRandom
	case "/dev/tty":
		if e := openTerminal(f); e != 0 {
			return e
		}
	default:
		mode := a[3] & 0o7777
		if openFlags&syscall.O_CREAT != 0 {
			mode &^= uint64(t.proc.creationMask())
		}
		r := abi.FileRequest{Op: abi.FileOpen, Flags: openFlags | mode<<32}
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

func (f *file) read(t *Task, buf []byte, off uint64) int64 {
	switch f.kind {
	case kindStdin:
		// pith's standard input, read by the monitor without waiting: while there is
		// nothing, wait for the monitor's word that there is (a shell waiting at its
		// prompt looking every few milliseconds made tens of exits a second).
		for {
			r := abi.FileRequest{Op: abi.FileStdin, Buf: uint64(uintptr(unsafe.Pointer(&buf[0]))), Len: uint64(len(buf))}
			n := fileRequest(&r)
			if n != -linux.EAGAIN || f.flags&syscall.O_NONBLOCK != 0 {
				return n
			}
			if news, already, _ := watchHost(0, abi.NotifyStdin); !already && t.waitChan(news, nil, nil) == waitSignalled {
				return -errRestart
			}
		}
	case kindNull:
		return 0
	case kindProc:
		if f.proc.names != nil {
			return -linux.EISDIR
		}
		if off >= uint64(len(f.proc.content)) {
			return 0
		}
		return int64(copy(buf, f.proc.content[off:]))
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
		return f.pipe.read(t, buf, f.flags&syscall.O_NONBLOCK != 0)
	case kindHost:
		return hostTransfer(abi.FileRead, f.handle, buf, off)
	}
	return -linux.EBADF
}

func (f *file) write(t *Task, buf []byte, off uint64) int64 {
	switch f.kind {
	case kindStdout, kindStderr:
		if streamGone(f.kind) {
			return -linux.EPIPE
		}
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
	case kindStdin: // a terminal is written where it was opened to be read
		if !isTerminal(0) {
			return -linux.EBADF
		}
		if out := terminalOutput(); out != nil {
			return out.write(t, buf, off)
		}
		return -linux.EIO
	case kindNull, kindZero, kindRandom:
		return int64(len(buf))
	case kindPipe:
		if f.readEnd {
			return -linux.EBADF
		}
		return f.pipe.write(t, buf, f.flags&syscall.O_NONBLOCK != 0)
	case kindHost:
		return hostTransfer(abi.FileWrite, f.handle, buf, off)
	}
	return -linux.EBADF
}

// streamGone reports whether the reader of pith's stdout or stderr (kind) has gone, as
// the monitor found (BootInfo.StreamsGone): a write there answers EPIPE.
func streamGone(kind fileKind) bool {
	return atomic.LoadUint64(&bootInfo().StreamsGone)&(1<<uint(kind-kindStdin)) != 0
}

// hostTransfer reads or writes (op: FileRead or FileWrite) the host file under handle, at
// off or, at atCurrent, at the host file's own offset.
func hostTransfer(op, handle uint64, buf []byte, off uint64) int64 {
	r := abi.FileRequest{Op: op, Handle: handle, Offset: off, Buf: uint64(uintptr(unsafe.Pointer(&buf[0]))), Len: uint64(len(buf))}
	if off == atCurrent {
		r.Offset, r.Flags = 0, abi.FileAtCurrent
	}
	return fileRequest(&r)
}

// atCurrent, as the offset of a host file's read or write, is the host file's own offset,
// which its dups, the programs the guest started and a fork's copy share
// (abi.FileAtCurrent): a shell's `exec >LOG` then its builtins' and its programs'
// writes go one after another, as on Linux.
const atCurrent = ^uint64(0)

// transfer carries out read, write, pread and pwrite: positioned transfers
// (pread/pwrite) use the given offset and only apply to host files and /proc's; the
// others use and advance the file's own offset (a host file's, kept by the host).
func transfer(t *Task, a [6]uint64, write, positioned bool) int64 {
	f := t.proc.fd(a[0])
	if f == nil {
		return -linux.EBADF
	}
	if positioned && f.kind != kindHost && f.kind != kindProc {
		return -linux.ESPIPE
	}
	if f.kind == kindTier0 {
		nr := uint64(syscall.SYS_READ)
		if write {
			nr = syscall.SYS_WRITE
		}
		return passThrough(nr)(t, [6]uint64{uint64(f.real), a[1], a[2]})
	}
	b, ok := appSlice(a[1], a[2])
	if !ok {
		return -linux.EFAULT
	}
	if f.kind == kindUnix { // a write of nothing still sends: an empty datagram
		if write {
			return f.unix.send(t, f, [][]byte{b}, 0, nil, nil)
		}
		return f.unix.read(t, f, [][]byte{b})
	}
	if a[2] == 0 {
		return 0
	}
	if f.kind == kindSocket {
		if write {
			return f.sock.send(t, f, [][]byte{b}, 0, nil)
		}
		n, _, _ := f.sock.recv(t, f, [][]byte{b}, 0)
		return n
	}
	off := f.pos()
	if positioned {
		if a[3] > math.MaxInt64 {
			return -linux.EINVAL
		}
		off = a[3]
	}
	var n int64
	if write {
		n = f.write(t, b, off)
		if n == -linux.EPIPE && (f.kind == kindPipe || f.kind == kindStdout || f.kind == kindStderr) {
			t.proc.post(t, sigPIPE) // as Linux: the writer is signalled, then sees EPIPE
		}
	} else {
		n = f.read(t, b, off)
	}
	if n > 0 && !positioned && f.kind == kindProc {
		f.setPos(f.pos() + uint64(n))
	}
	return n
}

func sysRead(t *Task, a [6]uint64) int64 { return transfer(t, a, false, false) }

func sysWrite(t *Task, a [6]uint64) int64 { return transfer(t, a, true, false) }

func sysPread(t *Task, a [6]uint64) int64 { return transfer(t, a, false, true) }

func sysPwrite(t *Task, a [6]uint64) int64 { return transfer(t, a, true, true) }

func sysLseek(t *Task, a [6]uint64) int64 {
	f := t.proc.fd(a[0])
	if f == nil {
		return -linux.EBADF
	}
	switch f.kind {
	case kindHost:
		r := abi.FileRequest{Op: abi.FileSeek, Handle: f.handle, Offset: a[1], Flags: a[2]}
		return fileRequest(&r)
	case kindNull, kindZero, kindRandom:
		return 0 // as Linux's character devices: a seek goes nowhere (Python opens /dev/null "r+" seekable)
	case kindProc:
	default:
		return -linux.ESPIPE
	}
	off := int64(a[1])
	switch a[2] {
	case 0:
	case 1:
		off += int64(f.pos())
	case 2:
		off += int64(len(f.proc.content))
	default:
		return -linux.EINVAL
	}
	if off < 0 {
		return -linux.EINVAL
	}
	f.setPos(uint64(off))
	return off
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
	st, e := fdStat(t, a[0])
	if e != 0 {
		return e
	}
	return putStat(a[1], &st)
}

// fdStat is what fstat says of descriptor fd.
func fdStat(t *Task, fd uint64) (st syscall.Stat_t, e int64) {
	f := t.proc.fd(fd)
	if f == nil {
		return st, -linux.EBADF
	}
	if f.kind == kindHost {
		e = hostStat(f.handle, "", &st, false)
		return st, e
	}
	return tier1Stat(f), 0
}

// Device numbers and inodes of the files tier 1 serves. Each has an identity of its own
// (st_dev and st_ino), as on Linux: programs compare them, tar to skip writing an archive
// that is /dev/null, cat to refuse copying a file onto itself.
const (
	devtmpfsDev  = 5       // 0:5, devtmpfs
	pipefsDev    = 13      // 0:13, pipefs: the standard streams and pipes
	devptsDev    = 24      // 0:24, devpts: the standard streams that are terminals
	sockfsDev    = 8       // 0:8, sockfs
	anonDev      = 14      // 0:14, anon_inodefs
	streamIno    = 1 << 20 // + the stream's number (kindStdin...)
	pipeIno      = 2 << 20 // + the pipe's number
	charMajorMem = 1       // /dev/null (1:3), /dev/zero (1:5), /dev/random (1:8), /dev/urandom (1:9)
)

// devStat is what stat says of the character device kind at /dev: null, zero or random.
func devStat(kind fileKind, path string) syscall.Stat_t {
	minor := map[fileKind]uint64{kindNull: 3, kindZero: 5, kindRandom: 9}[kind]
	if path == "/dev/random" {
		minor = 8
	}
	return syscall.Stat_t{Mode: syscall.S_IFCHR | 0o666, Nlink: 1, Blksize: 4096, Dev: devtmpfsDev,
		Ino: 100 + minor, Rdev: unix.Mkdev(charMajorMem, uint32(minor))}
}

// tier1Stat is what fstat says of f, a file tier 1 serves.
func tier1Stat(f *file) syscall.Stat_t {
	switch f.kind {
	case kindNull, kindZero, kindRandom:
		return devStat(f.kind, f.path)
	case kindSocket, kindUnix:
		obj := unsafe.Pointer(f.sock)
		if f.kind == kindUnix {
			obj = unsafe.Pointer(f.unix)
		}
		return syscall.Stat_t{Mode: syscall.S_IFSOCK | 0o777, Nlink: 1, Blksize: 4096, Dev: sockfsDev,
			Ino: uint64(uintptr(obj)) >> 4} // the socket's, shared by its descriptors' duplicates
	case kindPipe:
		return syscall.Stat_t{Mode: syscall.S_IFIFO | 0o600, Nlink: 1, Blksize: 4096, Dev: pipefsDev,
			Ino: pipeIno + f.pipe.ino}
	case kindProc:
		return procStat(f.path, f.proc)
	case kindTier0: // an anonymous inode, as Linux's epoll instances and eventfds are
		return syscall.Stat_t{Mode: 0o600, Nlink: 1, Blksize: 4096, Dev: anonDev, Ino: uint64(f.real)}
	}
	// The standard streams: terminals where pith's are, else carried as through pipes.
	if n := streamOf(f); n >= 0 && isTerminal(n) {
		return terminalStat(f.path)
	}
	return syscall.Stat_t{Mode: syscall.S_IFIFO | 0o600, Nlink: 1, Blksize: 4096, Dev: pipefsDev,
		Ino: streamIno + uint64(f.kind)}
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
	case "/dev/tty":
		if isTerminal(0) {
			return 0
		}
	}
	if unixNamed(p) {
		return 0
	}
	if rel, ok := procRel(p); ok && p != "/proc/self/exe" {
		var e int64
		*st, e = procStatAt(t, rel, p, false)
		return e
	}
	return hostStat(0, p, st, false)
}

const atEmptyPath, atSymlinkNofollow = 0x1000, 0x100

func sysNewfstatat(t *Task, a [6]uint64) int64 {
	st, e := statAt(t, a[0], a[1], a[3])
	if e != 0 {
		return e
	}
	return putStat(a[2], &st)
}

// statAt is what newfstatat says of the path at app address nameAddr, relative to
// dirfd, with its flags (AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW).
func statAt(t *Task, dirfd, nameAddr, flags uint64) (st syscall.Stat_t, e int64) {
	name, ok := appString(nameAddr)
	if !ok {
		return st, -linux.EFAULT
	}
	if name == "" && flags&atEmptyPath != 0 {
		return fdStat(t, dirfd)
	}
	p, e := t.proc.absPath(dirfd, name)
	if e != 0 {
		return st, e
	}
	if rel, ok := procRel(p); ok && p != "/proc/self/exe" {
		return procStatAt(t, rel, p, flags&atSymlinkNofollow != 0 && !strings.HasSuffix(name, "/"))
	}
	switch {
	case p == "/dev/null":
		st = devStat(kindNull, p)
	case p == "/dev/zero":
		st = devStat(kindZero, p)
	case p == "/dev/urandom" || p == "/dev/random":
		st = devStat(kindRandom, p)
	case p == "/dev/tty" && isTerminal(0):
		st = terminalStat(p)
	case unixNamed(p): // a socket's name, which only tier 1 has (unix.go)
		st.Mode, st.Nlink, st.Blksize = syscall.S_IFSOCK|0o755, 1, 4096 // Linux's, under umask 022
		st.Uid, st.Gid = abi.AppUID, abi.AppGID
	default:
		// A trailing slash names the directory a link leads to, so it is followed.
		nofollow := flags&atSymlinkNofollow != 0 && !strings.HasSuffix(name, "/")
		e = hostStat(0, p, &st, nofollow)
	}
	return st, e
}

// sysStatx answers statx from what stat says: the basic fields (STATX_BASIC_STATS),
// whatever the mask asks.
func sysStatx(t *Task, a [6]uint64) int64 {
	const statxBasicStats = 0x7ff
	if a[3]&0x80000000 != 0 { // STATX__RESERVED
		return -linux.EINVAL
	}
	st, e := statAt(t, a[0], a[1], a[2])
	if e != 0 {
		return e
	}
	x := unix.Statx_t{
		Mask: statxBasicStats, Blksize: uint32(st.Blksize), Nlink: uint32(st.Nlink), Uid: st.Uid, Gid: st.Gid,
		Mode: uint16(st.Mode), Ino: st.Ino, Size: uint64(st.Size), Blocks: uint64(st.Blocks),
		Atime:      unix.StatxTimestamp{Sec: st.Atim.Sec, Nsec: uint32(st.Atim.Nsec)},
		Ctime:      unix.StatxTimestamp{Sec: st.Ctim.Sec, Nsec: uint32(st.Ctim.Nsec)},
		Mtime:      unix.StatxTimestamp{Sec: st.Mtim.Sec, Nsec: uint32(st.Mtim.Nsec)},
		Rdev_major: unix.Major(st.Rdev), Rdev_minor: unix.Minor(st.Rdev),
		Dev_major: unix.Major(st.Dev), Dev_minor: unix.Minor(st.Dev),
	}
	if !putApp(a[4], x) {
		return -linux.EFAULT
	}
	return 0
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
	if f.kind == kindProc {
		return procGetdents(t, f, a[1], a[2])
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
	dst, ok := appSlice(a[2], a[3])
	if !ok {
		return -linux.EFAULT
	}
	if rel, ok := procRel(p); ok {
		if rel == "self" { // the link /proc/self, which procRel follows
			return int64(copy(dst, strconv.Itoa(int(selfPID.Load()))))
		}
		n, e := procLookup(t.proc, rel)
		if e != 0 {
			return e
		}
		if n.mode&syscall.S_IFMT != syscall.S_IFLNK {
			return -linux.EINVAL
		}
		return int64(copy(dst, n.target))
	}
	buf := make([]byte, a[3])
	if len(buf) == 0 {
		return -linux.EINVAL
	}
	r := abi.FileRequest{Op: abi.FileReadlink, Buf: uint64(uintptr(unsafe.Pointer(&buf[0]))), Len: a[3]}
	defer runtime.KeepAlive(hostString(&r.Path, &r.PathLen, p))
	n := fileRequest(&r)
	if n > 0 {
		copy(dst, buf[:n])
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

// twoPaths reads the paths of renameat and linkat: (olddirfd, oldpath, newdirfd,
// newpath), both read before either is made absolute, as Linux does.
func twoPaths(t *Task, a [6]uint64) (from, to string, e int64) {
	from, ok := appString(a[1])
	to, ok2 := appString(a[3])
	if !ok || !ok2 {
		return "", "", -linux.EFAULT
	}
	if from, e = t.proc.absPath(a[0], from); e != 0 {
		return "", "", e
	}
	to, e = t.proc.absPath(a[2], to)
	return from, to, e
}

func sysRenameat(t *Task, a [6]uint64) int64 {
	pf, pt, e := twoPaths(t, a)
	if e != 0 {
		return e
	}
	r := abi.FileRequest{Op: abi.FileRename}
	defer runtime.KeepAlive(hostString(&r.Path, &r.PathLen, pf))
	defer runtime.KeepAlive(hostString(&r.Buf, &r.Len, pt))
	return fileRequest(&r)
}

func sysLinkat(t *Task, a [6]uint64) int64 {
	const atSymlinkFollow = 0x400
	if a[4]&^(atSymlinkFollow|atEmptyPath) != 0 {
		return -linux.EINVAL
	}
	pf, pt, e := twoPaths(t, a)
	if e != 0 {
		return e
	}
	if a[4]&atSymlinkFollow != 0 {
		if pf, e = canonical(pf); e != 0 {
			return e
		}
	}
	r := abi.FileRequest{Op: abi.FileLink}
	defer runtime.KeepAlive(hostString(&r.Path, &r.PathLen, pf))
	defer runtime.KeepAlive(hostString(&r.Buf, &r.Len, pt))
	return fileRequest(&r)
}

// chownCall serves the chown calls: the app is root and owns every file it sees, so a
// change to its own ids (or -1, no change) succeeds with nothing to do; pith cannot give
// a host file to another owner (EPERM). byFD is for fchown, nofollow for lchown.
func chownCall(byFD, nofollow bool, uidArg int) handler {
	return func(t *Task, a [6]uint64) int64 {
		var e int64
		switch {
		case byFD:
			_, e = fdStat(t, a[0])
		case uidArg == 2: // fchownat(dirfd, path, uid, gid, flags)
			_, e = statAt(t, a[0], a[1], a[4])
		default:
			flags := uint64(0)
			if nofollow {
				flags = atSymlinkNofollow
			}
			_, e = statAt(t, atFDCWD, a[0], flags)
		}
		if e != 0 {
			return e
		}
		for _, id := range []uint32{uint32(a[uidArg]), uint32(a[uidArg+1])} {
			if id != ^uint32(0) && id != abi.AppUID {
				return -linux.EPERM
			}
		}
		return 0
	}
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
	p, e = canonical(p)
	if e != 0 {
		return e
	}
	t.proc.mu.Lock()
	t.proc.cwd = p
	t.proc.mu.Unlock()
	return 0
}

// canonical is guest path p with every symbolic link followed.
func canonical(p string) (string, int64) {
	buf := hostBuffer(4096)
	r := abi.FileRequest{Op: abi.FileCanonical, Buf: uint64(uintptr(unsafe.Pointer(&buf[0]))), Len: uint64(len(buf))}
	defer runtime.KeepAlive(hostString(&r.Path, &r.PathLen, p))
	n := fileRequest(&r)
	if n < 0 {
		return "", n
	}
	return string(buf[:n]), 0
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
	return pathRequest(t, a[0], a[1], abi.FileMkdir, a[2]&0o1777&^uint64(t.proc.creationMask()))
}

func sysUmask(t *Task, a [6]uint64) int64 {
	p := t.proc
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.umask
	p.umask = uint32(a[0] & 0o777)
	return int64(old)
}

// creationMask is the process's umask: the mode bits its new files and directories lack.
func (p *Process) creationMask() uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.umask
}

func sysUnlinkat(t *Task, a [6]uint64) int64 {
	p, e := t.proc.appPath(a[0], a[1])
	if e != 0 {
		return e
	}
	dir := uint64(0)
	if a[2]&0x200 != 0 { // AT_REMOVEDIR
		dir = 1
	} else if unixUnlink(p) { // a socket's name, which only tier 1 has (unix.go)
		return 0
	}
	r := abi.FileRequest{Op: abi.FileUnlink, Flags: dir}
	defer runtime.KeepAlive(hostString(&r.Path, &r.PathLen, p))
	res := fileRequest(&r)
	if res == 0 && dir == 1 {
		unixUnlinkUnder(p)
	}
	return res
}

func sysFchmodat(t *Task, a [6]uint64) int64 {
	return pathRequest(t, a[0], a[1], abi.FileChmod, a[2])
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
// elsewhere is waited for here (waitForLock).
func sysFlock(t *Task, a [6]uint64) int64 {
	const lockNB = 4
	f := t.proc.fd(a[0])
	if f == nil {
		return -linux.EBADF
	}
	if f.kind != kindHost {
		return 0
	}
	try := func() int64 { return fileRequest(&abi.FileRequest{Op: abi.FileFlock, Handle: f.handle, Flags: a[1]}) }
	if a[1]&lockNB != 0 {
		return try()
	}
	return waitForLock(t, try)
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
	if in.kind == kindSocket || in.kind == kindUnix || in.kind == kindPipe {
		// As Linux (6.x) for a pipe, which has no splice_read, and as its sendfile(2)
		// says for a socket: Go then copies itself. Copying here instead would turn a
		// non-blocking empty pipe's EAGAIN into Go waiting for the socket to be
		// writable, which it is: a loop that never blocks (net's TestCopyPipeIntoTCP).
		return -linux.EINVAL
	}
	count := min(a[3], 1<<20)
	if count == 0 {
		return 0
	}
	buf := make([]byte, count)
	off := in.pos()
	if a[2] != 0 {
		var ok bool
		if off, ok = getApp[uint64](a[2]); !ok {
			return -linux.EFAULT
		}
	}
	n := in.read(t, buf, off)
	if n <= 0 {
		return n
	}
	var w int64
	switch out.kind {
	case kindSocket:
		w = out.sock.send(t, out, [][]byte{buf[:n]}, 0, nil)
	case kindUnix:
		w = out.unix.send(t, out, [][]byte{buf[:n]}, 0, nil, nil)
	default:
		w = out.write(t, buf[:n], out.pos())
	}
	switch {
	case a[2] != 0:
		if w > 0 {
			putApp(a[2], off+uint64(w)) // read from there above: in the app's memory
		}
	case in.kind == kindHost && w < n:
		// Read at the host file's offset: what was not written goes back to be read again.
		fileRequest(&abi.FileRequest{Op: abi.FileSeek, Handle: in.handle, Offset: uint64(max(w, 0) - n), Flags: 1})
	case in.kind == kindProc && w > 0:
		in.setPos(in.pos() + uint64(w))
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

// Linux's magic numbers for the file systems a descriptor that is no host file is on.
const (
	pipefsMagic = 0x50495045
	sockfsMagic = 0x534f434b
	tmpfsMagic  = 0x01021994 // devtmpfs: /dev/null and its kind
)

func sysStatfs(t *Task, a [6]uint64) int64 {
	p, e := t.proc.appPath(atFDCWD, a[0])
	if e != 0 {
		return e
	}
	r := abi.FileRequest{Op: abi.FileStatfs}
	defer runtime.KeepAlive(hostString(&r.Path, &r.PathLen, p))
	return hostStatfs(&r, a[1])
}

func sysFstatfs(t *Task, a [6]uint64) int64 {
	f := t.proc.fd(a[0])
	if f == nil {
		return -linux.EBADF
	}
	if f.kind == kindHost {
		return hostStatfs(&abi.FileRequest{Op: abi.FileStatfs, Handle: f.handle}, a[1])
	}
	st := unix.Statfs_t{Type: tmpfsMagic, Bsize: pageSize, Namelen: 255, Frsize: pageSize}
	switch f.kind {
	case kindPipe:
		st.Type = pipefsMagic
	case kindSocket, kindUnix:
		st.Type = sockfsMagic
	}
	if !putApp(a[1], st) {
		return -linux.EFAULT
	}
	return 0
}

// hostStatfs asks the monitor for struct statfs (request r) and writes it at app address
// addr.
func hostStatfs(r *abi.FileRequest, addr uint64) int64 {
	st := new(unix.Statfs_t) // on the heap: the monitor writes it (hostBuffer)
	r.Buf, r.Len = uint64(uintptr(unsafe.Pointer(st))), uint64(unsafe.Sizeof(*st))
	if e := fileRequest(r); e != 0 {
		return e
	}
	if !putApp(addr, *st) {
		return -linux.EFAULT
	}
	return 0
}

// xattrCall serves an extended-attribute call as a file system without any answers,
// once the file it names is found: no attribute to get (ENODATA) or list, and none can
// be set (EOPNOTSUPP). ls and cp ask for ACLs and security labels this way. byFD is for
// the f* calls; nofollow for the l* ones.
func xattrCall(answer int64, byFD, nofollow bool) handler {
	return func(t *Task, a [6]uint64) int64 {
		var e int64
		if byFD {
			_, e = fdStat(t, a[0])
		} else {
			flags := uint64(0)
			if nofollow {
				flags = atSymlinkNofollow
			}
			_, e = statAt(t, atFDCWD, a[0], flags)
		}
		if e != 0 {
			return e
		}
		return answer
	}
}
