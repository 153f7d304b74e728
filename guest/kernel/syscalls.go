package kernel

import (
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"github.com/pithvm/pith/abi"
)

// Linux errno values the handlers return (negated).
const (
	ePERM   = 1
	eNOENT  = 2
	eSRCH   = 3
	eIO     = 5
	eBADF   = 9
	eAGAIN  = 11
	eNOMEM  = 12
	eFAULT  = 14
	eINVAL  = 22
	eNOTTY  = 25
	eNOSYS  = 38
	eSPIPE  = 29
	eNOEXEC = 8
)

// handler serves one system call: args are RDI, RSI, RDX, R10, R8, R9; the result goes
// to RAX (a negative errno on failure).
type handler func(t *Task, a [6]uint64) int64

// passThrough hands the call to tier 0 unchanged: its meaning is the same for the app as
// for tier 1, because they share the address space (memory, futexes, clocks, sleeping).
func passThrough(nr uint64) handler {
	return func(t *Task, a [6]uint64) int64 {
		r, _, e := syscall.Syscall6(uintptr(nr), uintptr(a[0]), uintptr(a[1]), uintptr(a[2]), uintptr(a[3]), uintptr(a[4]), uintptr(a[5]))
		if e != 0 {
			return -int64(e)
		}
		return int64(r)
	}
}

// syscallTable maps Linux x86-64 system call numbers to their handlers.
var syscallTable = map[uint64]handler{}

// syscallNames names the calls pith reports when an app makes one it does not serve.
var syscallNames = map[uint64]string{
	4: "stat", 6: "lstat", 7: "poll", 8: "lseek", 19: "readv", 21: "access", 22: "pipe",
	23: "select", 32: "dup", 33: "dup2", 41: "socket", 42: "connect", 43: "accept",
	49: "bind", 50: "listen", 57: "fork", 58: "vfork", 59: "execve", 61: "wait4",
	79: "getcwd", 80: "chdir", 83: "mkdir", 87: "unlink", 89: "readlink", 217: "getdents64",
	262: "newfstatat", 332: "statx", 293: "pipe2", 302: "prlimit64", 435: "clone3",
}

func init() {
	for _, nr := range []uint64{
		syscall.SYS_MPROTECT, syscall.SYS_MADVISE,
		syscall.SYS_FUTEX, syscall.SYS_CLOCK_GETTIME, syscall.SYS_CLOCK_GETRES,
		syscall.SYS_NANOSLEEP, syscall.SYS_CLOCK_NANOSLEEP, syscall.SYS_SCHED_YIELD,
		318 /* getrandom */, syscall.SYS_SCHED_GETAFFINITY, syscall.SYS_GETTID,
		syscall.SYS_UNAME, syscall.SYS_SET_ROBUST_LIST, syscall.SYS_PRLIMIT64,
		syscall.SYS_GETPID, syscall.SYS_GETPPID, syscall.SYS_GETUID, syscall.SYS_GETEUID,
		syscall.SYS_GETGID, syscall.SYS_GETEGID, 334, // rseq
		syscall.SYS_PRCTL,
	} {
		syscallTable[nr] = passThrough(nr)
	}
	// The netpoller's epoll instances and eventfds are tier 0's, under numbers of the
	// app's own (files.go).
	for _, nr := range []uint64{syscall.SYS_EPOLL_CREATE1, 290 /* eventfd2 */} {
		pass := passThrough(nr)
		syscallTable[nr] = func(t *Task, a [6]uint64) int64 { return t.proc.tier0FD(pass(t, a)) }
	}
	syscallTable[syscall.SYS_EPOLL_CTL] = sysEpollCtl
	syscallTable[syscall.SYS_EPOLL_WAIT] = sysEpollWait(syscall.SYS_EPOLL_WAIT)
	syscallTable[syscall.SYS_EPOLL_PWAIT] = sysEpollWait(syscall.SYS_EPOLL_PWAIT)
	syscallTable[syscall.SYS_WRITE] = sysWrite
	syscallTable[syscall.SYS_READ] = sysRead
	syscallTable[syscall.SYS_CLOSE] = sysClose
	syscallTable[syscall.SYS_FCNTL] = sysFcntl
	syscallTable[syscall.SYS_IOCTL] = func(*Task, [6]uint64) int64 { return -eNOTTY }
	syscallTable[syscall.SYS_OPENAT] = sysOpenat
	syscallTable[syscall.SYS_OPEN] = sysOpen
	syscallTable[syscall.SYS_PREAD64] = sysPread
	syscallTable[syscall.SYS_PWRITE64] = sysPwrite
	syscallTable[syscall.SYS_LSEEK] = sysLseek
	syscallTable[syscall.SYS_FSTAT] = sysFstat
	syscallTable[syscall.SYS_STAT] = sysStat
	syscallTable[syscall.SYS_LSTAT] = sysLstat
	syscallTable[262] = sysNewfstatat // newfstatat
	syscallTable[syscall.SYS_FACCESSAT] = sysFaccessat
	syscallTable[439] = sysFaccessat // faccessat2
	syscallTable[syscall.SYS_GETDENTS64] = sysGetdents64
	syscallTable[syscall.SYS_READLINKAT] = sysReadlinkat
	syscallTable[syscall.SYS_GETCWD] = sysGetcwd
	syscallTable[syscall.SYS_MKDIRAT] = sysMkdirat
	syscallTable[syscall.SYS_UNLINKAT] = sysUnlinkat
	syscallTable[syscall.SYS_DUP] = sysDup
	syscallTable[syscall.SYS_SENDFILE] = sysSendfile
	syscallTable[syscall.SYS_TIME] = func(t *Task, a [6]uint64) int64 {
		now := time.Now().Unix()
		if a[0] != 0 && appRange(a[0], 8) {
			*(*int64)(appPtr(a[0])) = now
		}
		return now
	}
	syscallTable[syscall.SYS_GETTIMEOFDAY] = func(t *Task, a [6]uint64) int64 {
		now := time.Now()
		if a[0] != 0 {
			if !appRange(a[0], 16) {
				return -eFAULT
			}
			*(*[2]int64)(appPtr(a[0])) = [2]int64{now.Unix(), int64(now.Nanosecond() / 1000)}
		}
		if a[1] != 0 { // struct timezone: UTC, as Linux's is unless set
			if !appRange(a[1], 8) {
				return -eFAULT
			}
			*(*[2]int32)(appPtr(a[1])) = [2]int32{}
		}
		return 0
	}
	syscallTable[syscall.SYS_SYMLINKAT] = sysSymlinkat
	syscallTable[syscall.SYS_SYMLINK] = func(t *Task, a [6]uint64) int64 { return sysSymlinkat(t, [6]uint64{a[0], ^uint64(99), a[1]}) }
	syscallTable[syscall.SYS_RENAMEAT] = sysRenameat
	syscallTable[316] = sysRenameat // renameat2 (flags ignored)
	syscallTable[syscall.SYS_RENAME] = func(t *Task, a [6]uint64) int64 {
		return sysRenameat(t, [6]uint64{^uint64(99), a[0], ^uint64(99), a[1]})
	}
	syscallTable[syscall.SYS_CHDIR] = sysChdir
	syscallTable[syscall.SYS_FCHMODAT] = sysFchmodat
	syscallTable[syscall.SYS_FCHMOD] = sysFchmod
	syscallTable[syscall.SYS_CHMOD] = func(t *Task, a [6]uint64) int64 { return sysFchmodat(t, [6]uint64{^uint64(99), a[0], a[1]}) }
	syscallTable[syscall.SYS_FCHDIR] = sysFchdir
	syscallTable[syscall.SYS_FTRUNCATE] = sysFtruncate
	syscallTable[syscall.SYS_FSYNC] = func(*Task, [6]uint64) int64 { return 0 }
	syscallTable[syscall.SYS_FDATASYNC] = func(*Task, [6]uint64) int64 { return 0 }
	syscallTable[syscall.SYS_MKDIR] = func(t *Task, a [6]uint64) int64 { return sysMkdirat(t, [6]uint64{^uint64(99), a[0], a[1]}) }
	syscallTable[syscall.SYS_UNLINK] = func(t *Task, a [6]uint64) int64 { return sysUnlinkat(t, [6]uint64{^uint64(99), a[0], 0}) }
	syscallTable[syscall.SYS_RMDIR] = func(t *Task, a [6]uint64) int64 { return sysUnlinkat(t, [6]uint64{^uint64(99), a[0], 0x200}) }
	syscallTable[syscall.SYS_READLINK] = func(t *Task, a [6]uint64) int64 { return sysReadlinkat(t, [6]uint64{^uint64(99), a[0], a[1], a[2]}) }
	syscallTable[syscall.SYS_ACCESS] = func(t *Task, a [6]uint64) int64 { return sysFaccessat(t, [6]uint64{^uint64(99), a[0], a[1]}) }
	syscallTable[syscall.SYS_PIPE2] = sysPipe2
	syscallTable[syscall.SYS_PIPE] = func(t *Task, a [6]uint64) int64 { return sysPipe2(t, [6]uint64{a[0], 0}) }
	syscallTable[syscall.SYS_DUP3] = sysDup3
	syscallTable[syscall.SYS_DUP2] = func(t *Task, a [6]uint64) int64 {
		if a[0] == a[1] {
			if t.proc.fd(a[0]) == nil {
				return -eBADF
			}
			return int64(a[1])
		}
		return sysDup3(t, [6]uint64{a[0], a[1], 0})
	}
	syscallTable[syscall.SYS_WRITEV] = sysWritev
	syscallTable[syscall.SYS_BRK] = sysBrk
	syscallTable[syscall.SYS_ARCH_PRCTL] = sysArchPrctl
	syscallTable[syscall.SYS_SET_TID_ADDRESS] = sysSetTidAddress
	syscallTable[syscall.SYS_EXIT] = sysExit
	syscallTable[syscall.SYS_EXIT_GROUP] = sysExitGroup
	syscallTable[syscall.SYS_CLONE] = sysClone
	syscallTable[syscall.SYS_RT_SIGACTION] = sysRtSigaction
	syscallTable[syscall.SYS_RT_SIGPROCMASK] = sysRtSigprocmask
	syscallTable[syscall.SYS_SIGALTSTACK] = sysSigaltstack
	syscallTable[syscall.SYS_RT_SIGRETURN] = sysRtSigreturn
	syscallTable[syscall.SYS_TGKILL] = sysTgkill
	syscallTable[syscall.SYS_TKILL] = func(t *Task, a [6]uint64) int64 { return sysTgkill(t, [6]uint64{1, a[0], a[1]}) }
	syscallTable[syscall.SYS_KILL] = sysKill
	syscallTable[syscall.SYS_EXECVE] = sysExecve
	syscallTable[syscall.SYS_MMAP] = sysMmap
	syscallTable[syscall.SYS_MUNMAP] = sysMunmap
	syscallTable[syscall.SYS_MSYNC] = sysMsync
	syscallTable[syscall.SYS_FALLOCATE] = sysFallocate
	// copy_file_range: Go's io.Copy between files falls back to read and write on ENOSYS,
	// as on Linux before 4.5; answered quietly.
	syscallTable[326] = func(*Task, [6]uint64) int64 { return -eNOSYS }
	syscallTable[280] = sysUtimensat
	syscallTable[syscall.SYS_FLOCK] = sysFlock
	// pidfd_open: without process descriptors Go's os package waits with wait4, as it does
	// on Linux before 5.3; answered quietly, as every app using os/exec asks.
	syscallTable[434] = func(*Task, [6]uint64) int64 { return -eNOSYS }
	syscallTable[syscall.SYS_WAIT4] = sysWait4
	syscallTable[syscall.SYS_WAITID] = sysWaitid
	for _, nr := range []uint64{syscall.SYS_FORK, syscall.SYS_VFORK} {
		syscallTable[nr] = func(*Task, [6]uint64) int64 { return -eNOSYS }
	}
}

// Trace makes every app system call print a line on stderr (pith run --trace).
var Trace bool

// noReturn marks a traced call that does not return.
const noReturn = -1 << 62

// trace prints one system call the way strace does: tid, name, arguments, result.
func trace(t *Task, nr uint64, a [6]uint64, ret int64) {
	name := traceNames[nr]
	if name == "" {
		name = syscallNames[nr]
	}
	if name == "" {
		name = fmt.Sprintf("syscall_%d", nr)
	}
	res := fmt.Sprintf("%d", ret)
	if ret == noReturn {
		res = "?"
	} else if ret < 0 && ret > -4096 {
		res = fmt.Sprintf("-1 %s (%v)", errnoName(-ret), syscall.Errno(-ret))
	} else if ret > 0xffff {
		res = fmt.Sprintf("%#x", ret)
	}
	fmt.Fprintf(os.Stderr, "[pid %d] %s(%#x, %#x, %#x, %#x, %#x, %#x) = %s\n", t.tid, name, a[0], a[1], a[2], a[3], a[4], a[5], res)
}

func errnoName(e int64) string {
	names := map[int64]string{1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 9: "EBADF", 11: "EAGAIN",
		12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 17: "EEXIST", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL",
		25: "ENOTTY", 29: "ESPIPE", 30: "EROFS", 32: "EPIPE", 38: "ENOSYS", 40: "ELOOP", 110: "ETIMEDOUT"}
	if n, ok := names[e]; ok {
		return n
	}
	return fmt.Sprintf("E%d", e)
}

// traceNames names the calls pith serves, for --trace.
var traceNames = map[uint64]string{
	0: "read", 1: "write", 2: "open", 3: "close", 4: "stat", 5: "fstat", 6: "lstat", 8: "lseek",
	9: "mmap", 10: "mprotect", 11: "munmap", 12: "brk", 13: "rt_sigaction", 14: "rt_sigprocmask",
	15: "rt_sigreturn", 16: "ioctl", 17: "pread64", 18: "pwrite64", 20: "writev", 21: "access",
	22: "pipe", 24: "sched_yield", 28: "madvise", 32: "dup", 33: "dup2", 35: "nanosleep",
	39: "getpid", 40: "sendfile", 56: "clone", 60: "exit", 62: "kill", 63: "uname", 72: "fcntl",
	74: "fsync", 77: "ftruncate", 79: "getcwd", 80: "chdir", 81: "fchdir", 82: "rename",
	83: "mkdir", 84: "rmdir", 87: "unlink", 88: "symlink", 89: "readlink", 90: "chmod",
	91: "fchmod", 96: "gettimeofday", 102: "getuid", 104: "getgid", 107: "geteuid", 108: "getegid",
	110: "getppid", 131: "sigaltstack", 157: "prctl", 158: "arch_prctl", 186: "gettid",
	200: "tkill", 201: "time", 202: "futex", 204: "sched_getaffinity", 217: "getdents64",
	218: "set_tid_address", 228: "clock_gettime", 229: "clock_getres", 230: "clock_nanosleep",
	231: "exit_group", 232: "epoll_wait", 233: "epoll_ctl", 234: "tgkill", 257: "openat",
	258: "mkdirat", 262: "newfstatat", 263: "unlinkat", 264: "renameat", 266: "symlinkat",
	267: "readlinkat", 268: "fchmodat", 269: "faccessat", 273: "set_robust_list", 281: "epoll_pwait",
	290: "eventfd2", 291: "epoll_create1", 292: "dup3", 293: "pipe2", 302: "prlimit64",
	316: "renameat2", 318: "getrandom", 334: "rseq", 439: "faccessat2",
}

// syscall serves the system call the task's app thread just made.
func (t *Task) syscall() {
	r := &t.ctx.Regs
	nr := r.RAX
	a := [6]uint64{r.RDI, r.RSI, r.RDX, r.R10, r.R8, r.R9}
	h := syscallTable[nr]
	if h == nil {
		t.proc.mu.Lock()
		first := !t.proc.unsupported[nr]
		t.proc.unsupported[nr] = true
		t.proc.mu.Unlock()
		if first {
			name := syscallNames[nr]
			if name == "" {
				name = fmt.Sprintf("#%d", nr)
			}
			fmt.Fprintf(os.Stderr, "pith: the app called %s, which pith does not support yet: it got ENOSYS\n", name)
		}
		errno := int64(-eNOSYS)
		r.RAX = uint64(errno)
		return
	}
	if Trace && (nr == syscall.SYS_EXIT_GROUP || nr == syscall.SYS_EXIT) {
		trace(t, nr, a, noReturn) // they do not return, as strace shows them
	}
	ret := serve(h, t, a)
	if Trace && nr != syscall.SYS_EXIT_GROUP && nr != syscall.SYS_EXIT {
		trace(t, nr, a, ret)
	}
	if nr != syscall.SYS_RT_SIGRETURN {
		r.RAX = uint64(ret)
	}
}

// serve runs handler h for the call; a fault on an app address it touches answers
// EFAULT, as Linux does.
func serve(h handler, t *Task, a [6]uint64) (ret int64) {
	defer catchAppFault(func() { ret = -eFAULT })
	return h(t, a)
}

// catchAppFault, deferred, recovers from a fault on an address the app handed tier 1
// (task goroutines run with debug.SetPanicOnFault) and runs then, if not nil; any other
// panic goes on. appRange checks bounds only, and the app may name memory it never
// mapped; tier 1's own memory is always mapped.
func catchAppFault(then func()) {
	r := recover()
	if r == nil {
		return
	}
	if _, fault := r.(interface{ Addr() uintptr }); !fault {
		panic(r)
	}
	if then != nil {
		then()
	}
}

// appRange checks that [addr, addr+n) lies in the app's part of the address space, where
// tier 0 backs mapped memory on first touch. Whether it is mapped is found by touching
// it: a fault there answers EFAULT (serve).
func appRange(addr, n uint64) bool {
	if n == 0 {
		return true
	}
	return addr+n >= addr && addr >= abi.LowMapEnd && addr+n <= 0x7ffffffff000 &&
		(addr >= abi.PhysBase+abi.PhysSpan || addr+n <= abi.PhysBase)
}

func sysWritev(t *Task, a [6]uint64) int64 {
	fd, iov, cnt := a[0], a[1], a[2]
	if cnt > 1024 || !appRange(iov, cnt*16) {
		return -eINVAL
	}
	total := int64(0)
	for i := uint64(0); i < cnt; i++ {
		v := appBytes(iov+16*i, 16)
		base, n := *(*uint64)(unsafe.Pointer(&v[0])), *(*uint64)(unsafe.Pointer(&v[8]))
		r := sysWrite(t, [6]uint64{fd, base, n})
		if r < 0 {
			if total > 0 {
				return total
			}
			return r
		}
		total += r
	}
	return total
}

func sysBrk(t *Task, a [6]uint64) int64 {
	p := t.proc
	p.mu.Lock()
	defer p.mu.Unlock()
	want := a[0]
	if want < p.brkStart || want > p.brkStart+1<<30 {
		return int64(p.brk)
	}
	newEnd := (want + pageSize - 1) &^ (pageSize - 1)
	oldEnd := (p.brk + pageSize - 1) &^ (pageSize - 1)
	if newEnd > oldEnd {
		if _, err := mmapFixed(oldEnd, newEnd-oldEnd); err != nil {
			return int64(p.brk)
		}
	}
	p.brk = want
	return int64(p.brk)
}

func sysArchPrctl(t *Task, a [6]uint64) int64 {
	switch a[0] {
	case 0x1002: // ARCH_SET_FS
		t.ctx.FSBase = a[1]
		return 0
	case 0x1003: // ARCH_GET_FS
		if !appRange(a[1], 8) {
			return -eFAULT
		}
		*(*uint64)(unsafe.Pointer(&appBytes(a[1], 8)[0])) = t.ctx.FSBase
		return 0
	}
	return -eINVAL
}

func sysSetTidAddress(t *Task, a [6]uint64) int64 {
	t.clearTID = a[0]
	return int64(t.tid)
}

func sysExit(t *Task, a [6]uint64) int64 {
	if t.clearTID != 0 && storeTID(t.clearTID, 0) {
		syscall.Syscall6(syscall.SYS_FUTEX, uintptr(t.clearTID), 1 /* FUTEX_WAKE */, 1, 0, 0, 0)
	}
	t.exited = true
	if t.proc.vfork != nil {
		t.proc.exit(int(int32(a[0])))
	}
	return 0
}

// storeTID writes a thread ID (or 0) where the app asked for it, reporting whether it
// could: Linux ignores a failed write of one (set_tid_address, CLONE_*SETTID), so a
// fault here is not the call's.
func storeTID(addr uint64, tid int32) (ok bool) {
	if !appRange(addr, 4) {
		return false
	}
	defer catchAppFault(func() { ok = false })
	*(*int32)(appPtr(addr)) = tid
	return true
}

func sysExitGroup(t *Task, a [6]uint64) int64 {
	t.proc.exit(int(int32(a[0])))
	return 0
}

// Clone flags (include/uapi/linux/sched.h).
const (
	cloneVM            = 0x100
	cloneThread        = 0x10000
	cloneSettls        = 0x80000
	cloneParentSettid  = 0x100000
	cloneChildCleartid = 0x200000
	cloneChildSettid   = 0x1000000
)

// cloneCPU gives a new task t's registers and vector state, returning 0 from clone,
// on stack if one is given.
func (c *Task) cloneCPU(t *Task, stack uint64) {
	c.ctx.Regs = t.ctx.Regs
	c.ctx.Regs.RAX = 0
	if stack != 0 {
		c.ctx.Regs.RSP = stack
	}
	c.ctx.FSBase = t.ctx.FSBase
	copy(c.xsave(), t.xsave())
	c.sigmask = t.sigmask
}

// sysClone creates an app thread, a new task on a new OS thread, or a vfork child.
func sysClone(t *Task, a [6]uint64) int64 {
	flags, stack, ptid, ctid, tls := a[0], a[1], a[2], a[3], a[4]
	if flags&(cloneVM|cloneVfork|cloneThread) == cloneVM|cloneVfork {
		return vfork(t, stack)
	}
	if flags&(cloneVM|cloneThread) != cloneVM|cloneThread {
		return -eNOSYS // no processes: fork and friends are not supported
	}
	c, err := newTask(t.proc)
	if err != nil {
		return -eAGAIN
	}
	c.cloneCPU(t, stack)
	if flags&cloneSettls != 0 {
		c.ctx.FSBase = tls
	}
	c.altSP, c.altSize = 0, 0
	if flags&cloneChildCleartid != 0 {
		c.clearTID = ctid
	}
	return int64(c.start(&t.proc.wg, func(tid int32) {
		if flags&cloneParentSettid != 0 {
			storeTID(ptid, tid)
		}
		if flags&cloneChildSettid != 0 {
			storeTID(ctid, tid)
		}
	}))
}
