package kernel

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/guest/linux"
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

// atFDCWD is AT_FDCWD (-100): the *at calls' "relative to the working directory".
const atFDCWD = ^uint64(99)

// sysEntry is one Linux x86-64 system call as tier 1 knows it.
type sysEntry struct {
	name    string
	handler handler // nil: not served; the app gets ENOSYS and pith says so, once
	note    string  // how far it is served, where not fully (docs/syscalls.md)
}

// syscalls is tier 1's system-call table: every call it serves, and the calls it does
// not that apps are known to make, by number. --trace and the ENOSYS report take their
// names from it. It is filled by init: its handlers lead back to the dispatch that reads
// it, which a package-level initializer may not.
var syscalls map[uint64]sysEntry

// enosys answers a call Go falls back from quietly: copy_file_range (to read and write,
// as on Linux before 4.5) and pidfd_open (to wait4, as before 5.3), which every app using
// os/exec makes; and others that C libraries fall back from (clone3, membarrier).
func enosys(*Task, [6]uint64) int64 { return -linux.ENOSYS }

func init() {
	accept4 := bySocket(sysAccept4, unixAccept)
	syscalls = map[uint64]sysEntry{
		// Passed to tier 0 unchanged (passThrough).
		unix.SYS_MPROTECT:          tier0("mprotect", unix.SYS_MPROTECT),
		unix.SYS_MADVISE:           tier0("madvise", unix.SYS_MADVISE),
		unix.SYS_FUTEX:             tier0("futex", unix.SYS_FUTEX),
		unix.SYS_CLOCK_GETTIME:     tier0("clock_gettime", unix.SYS_CLOCK_GETTIME),
		unix.SYS_CLOCK_GETRES:      tier0("clock_getres", unix.SYS_CLOCK_GETRES),
		unix.SYS_NANOSLEEP:         tier0("nanosleep", unix.SYS_NANOSLEEP),
		unix.SYS_CLOCK_NANOSLEEP:   tier0("clock_nanosleep", unix.SYS_CLOCK_NANOSLEEP),
		unix.SYS_SCHED_YIELD:       tier0("sched_yield", unix.SYS_SCHED_YIELD),
		unix.SYS_GETRANDOM:         tier0("getrandom", unix.SYS_GETRANDOM),
		unix.SYS_SCHED_GETAFFINITY: tier0("sched_getaffinity", unix.SYS_SCHED_GETAFFINITY),
		unix.SYS_GETTID:            tier0("gettid", unix.SYS_GETTID),
		unix.SYS_UNAME:             tier0("uname", unix.SYS_UNAME),
		unix.SYS_SET_ROBUST_LIST:   tier0("set_robust_list", unix.SYS_SET_ROBUST_LIST),
		unix.SYS_PRLIMIT64:         tier0("prlimit64", unix.SYS_PRLIMIT64),
		unix.SYS_GETPID:            tier0("getpid", unix.SYS_GETPID),
		unix.SYS_GETPPID:           tier0("getppid", unix.SYS_GETPPID),
		unix.SYS_GETUID:            tier0("getuid", unix.SYS_GETUID),
		unix.SYS_GETEUID:           tier0("geteuid", unix.SYS_GETEUID),
		unix.SYS_GETGID:            tier0("getgid", unix.SYS_GETGID),
		unix.SYS_GETEGID:           tier0("getegid", unix.SYS_GETEGID),
		unix.SYS_RSEQ:              tier0("rseq", unix.SYS_RSEQ),
		unix.SYS_PRCTL:             tier0("prctl", unix.SYS_PRCTL),
		// The netpoller's epoll instances and eventfds are tier 0's, under numbers of the
		// app's own (files.go).
		unix.SYS_EPOLL_CREATE1: {"epoll_create1", tier0FD(unix.SYS_EPOLL_CREATE1, 0), "tier 0 serves it; the descriptor is numbered as the app's"},
		unix.SYS_EVENTFD2:      {"eventfd2", tier0FD(unix.SYS_EVENTFD2, 1), "tier 0 serves it; the descriptor is numbered as the app's"},
		unix.SYS_EPOLL_CTL:     {"epoll_ctl", sysEpollCtl, ""},
		unix.SYS_EPOLL_WAIT:    {"epoll_wait", sysEpollWait(unix.SYS_EPOLL_WAIT), ""},
		unix.SYS_EPOLL_PWAIT:   {"epoll_pwait", sysEpollWait(unix.SYS_EPOLL_PWAIT), ""},

		// Files (files.go).
		unix.SYS_READ:     {"read", sysRead, ""},
		unix.SYS_WRITE:    {"write", sysWrite, ""},
		unix.SYS_READV:    {"readv", sysReadv, ""},
		unix.SYS_WRITEV:   {"writev", sysWritev, ""},
		unix.SYS_PREAD64:  {"pread64", sysPread, ""},
		unix.SYS_PWRITE64: {"pwrite64", sysPwrite, ""},
		unix.SYS_SENDFILE: {"sendfile", sysSendfile, ""},
		unix.SYS_LSEEK:    {"lseek", sysLseek, ""},
		unix.SYS_CLOSE:    {"close", sysClose, ""},
		unix.SYS_FCNTL:    {"fcntl", sysFcntl, "record locks (F_SETLK, F_OFD_SETLK...) are the host file's; F_SETLKW looks again every millisecond"},
		unix.SYS_IOCTL:    {"ioctl", sysIoctl, "FIONREAD and FIONBIO on sockets; termios, window size and process group on standard streams that are terminals (pith's own, through the monitor); FIOCLEX, FIONCLEX and FIONBIO on any descriptor; ENOTTY otherwise"},
		unix.SYS_OPEN:     {"open", sysOpen, ""},
		unix.SYS_OPENAT:   {"openat", sysOpenat, ""},
		unix.SYS_CREAT: {"creat", func(t *Task, a [6]uint64) int64 {
			return sysOpenat(t, [6]uint64{atFDCWD, a[0], syscall.O_CREAT | syscall.O_WRONLY | syscall.O_TRUNC, a[1]})
		}, ""},
		unix.SYS_CLOSE_RANGE: {"close_range", sysCloseRange, ""},
		unix.SYS_FSTAT:       {"fstat", sysFstat, ""},
		unix.SYS_STAT:        {"stat", sysStat, ""},
		unix.SYS_LSTAT:       {"lstat", sysLstat, ""},
		unix.SYS_NEWFSTATAT:  {"newfstatat", sysNewfstatat, ""},
		unix.SYS_STATX:       {"statx", sysStatx, "the basic fields (STATX_BASIC_STATS), from stat"},
		unix.SYS_STATFS:      {"statfs", sysStatfs, ""},
		unix.SYS_FSTATFS:     {"fstatfs", sysFstatfs, ""},
		unix.SYS_GETXATTR:    {"getxattr", xattrCall(-linux.ENODATA, false, false), "ENODATA: no file has extended attributes"},
		unix.SYS_LGETXATTR:   {"lgetxattr", xattrCall(-linux.ENODATA, false, true), "ENODATA: no file has extended attributes"},
		unix.SYS_FGETXATTR:   {"fgetxattr", xattrCall(-linux.ENODATA, true, false), "ENODATA: no file has extended attributes"},
		unix.SYS_LISTXATTR:   {"listxattr", xattrCall(0, false, false), "an empty list"},
		unix.SYS_LLISTXATTR:  {"llistxattr", xattrCall(0, false, true), "an empty list"},
		unix.SYS_FLISTXATTR:  {"flistxattr", xattrCall(0, true, false), "an empty list"},
		unix.SYS_SETXATTR:    {"setxattr", xattrCall(-linux.EOPNOTSUPP, false, false), "EOPNOTSUPP"},
		unix.SYS_LSETXATTR:   {"lsetxattr", xattrCall(-linux.EOPNOTSUPP, false, true), "EOPNOTSUPP"},
		unix.SYS_FSETXATTR:   {"fsetxattr", xattrCall(-linux.EOPNOTSUPP, true, false), "EOPNOTSUPP"},
		unix.SYS_ACCESS: {"access", func(t *Task, a [6]uint64) int64 {
			return sysFaccessat(t, [6]uint64{atFDCWD, a[0], a[1]})
		}, ""},
		unix.SYS_FACCESSAT:  {"faccessat", sysFaccessat, ""},
		unix.SYS_FACCESSAT2: {"faccessat2", sysFaccessat, ""},
		unix.SYS_GETDENTS64: {"getdents64", sysGetdents64, ""},
		unix.SYS_READLINKAT: {"readlinkat", sysReadlinkat, ""},
		unix.SYS_READLINK: {"readlink", func(t *Task, a [6]uint64) int64 {
			return sysReadlinkat(t, [6]uint64{atFDCWD, a[0], a[1], a[2]})
		}, ""},
		unix.SYS_GETCWD:  {"getcwd", sysGetcwd, ""},
		unix.SYS_CHDIR:   {"chdir", sysChdir, ""},
		unix.SYS_FCHDIR:  {"fchdir", sysFchdir, ""},
		unix.SYS_MKDIRAT: {"mkdirat", sysMkdirat, ""},
		unix.SYS_UMASK:   {"umask", sysUmask, ""},
		unix.SYS_MKDIR: {"mkdir", func(t *Task, a [6]uint64) int64 {
			return sysMkdirat(t, [6]uint64{atFDCWD, a[0], a[1]})
		}, ""},
		unix.SYS_UNLINKAT: {"unlinkat", sysUnlinkat, ""},
		unix.SYS_UNLINK: {"unlink", func(t *Task, a [6]uint64) int64 {
			return sysUnlinkat(t, [6]uint64{atFDCWD, a[0], 0})
		}, ""},
		unix.SYS_RMDIR: {"rmdir", func(t *Task, a [6]uint64) int64 {
			return sysUnlinkat(t, [6]uint64{atFDCWD, a[0], unix.AT_REMOVEDIR})
		}, ""},
		unix.SYS_SYMLINKAT: {"symlinkat", sysSymlinkat, ""},
		unix.SYS_SYMLINK: {"symlink", func(t *Task, a [6]uint64) int64 {
			return sysSymlinkat(t, [6]uint64{a[0], atFDCWD, a[1]})
		}, ""},
		unix.SYS_RENAMEAT: {"renameat", sysRenameat, ""},
		unix.SYS_LINKAT:   {"linkat", sysLinkat, "EXDEV beneath an image's files (--rootfs, pith run IMAGE): not in their layer yet"},
		unix.SYS_LINK: {"link", func(t *Task, a [6]uint64) int64 {
			return sysLinkat(t, [6]uint64{atFDCWD, a[0], atFDCWD, a[1], 0})
		}, "EXDEV beneath an image's files (--rootfs, pith run IMAGE): not in their layer yet"},
		unix.SYS_CHOWN:     {"chown", chownCall(false, false, 1), "to the app's own ids only (root's): EPERM for others"},
		unix.SYS_LCHOWN:    {"lchown", chownCall(false, true, 1), "to the app's own ids only (root's): EPERM for others"},
		unix.SYS_FCHOWN:    {"fchown", chownCall(true, false, 1), "to the app's own ids only (root's): EPERM for others"},
		unix.SYS_FCHOWNAT:  {"fchownat", chownCall(false, false, 2), "to the app's own ids only (root's): EPERM for others"},
		unix.SYS_MKNODAT:   {"mknodat", func(*Task, [6]uint64) int64 { return -linux.EPERM }, "EPERM: no device files or FIFOs"},
		unix.SYS_MKNOD:     {"mknod", func(*Task, [6]uint64) int64 { return -linux.EPERM }, "EPERM: no device files or FIFOs"},
		unix.SYS_RENAMEAT2: {"renameat2", sysRenameat, "flags ignored"},
		unix.SYS_RENAME: {"rename", func(t *Task, a [6]uint64) int64 {
			return sysRenameat(t, [6]uint64{atFDCWD, a[0], atFDCWD, a[1]})
		}, ""},
		unix.SYS_FCHMODAT: {"fchmodat", sysFchmodat, ""},
		unix.SYS_FCHMOD:   {"fchmod", sysFchmod, ""},
		unix.SYS_CHMOD: {"chmod", func(t *Task, a [6]uint64) int64 {
			return sysFchmodat(t, [6]uint64{atFDCWD, a[0], a[1]})
		}, ""},
		unix.SYS_FTRUNCATE:       {"ftruncate", sysFtruncate, ""},
		unix.SYS_FALLOCATE:       {"fallocate", sysFallocate, ""},
		unix.SYS_FADVISE64:       {"fadvise64", sysFadvise, "advice is accepted and not acted on"},
		unix.SYS_FSYNC:           {"fsync", func(*Task, [6]uint64) int64 { return 0 }, "does nothing: writes reach the host file at once"},
		unix.SYS_FDATASYNC:       {"fdatasync", func(*Task, [6]uint64) int64 { return 0 }, "does nothing: writes reach the host file at once"},
		unix.SYS_FLOCK:           {"flock", sysFlock, "the host file's lock; a wait looks again every millisecond"},
		unix.SYS_UTIMENSAT:       {"utimensat", sysUtimensat, ""},
		unix.SYS_COPY_FILE_RANGE: {"copy_file_range", enosys, "ENOSYS, quietly: Go copies with read and write"},
		unix.SYS_PIPE2:           {"pipe2", sysPipe2, ""},
		unix.SYS_PIPE: {"pipe", func(t *Task, a [6]uint64) int64 {
			return sysPipe2(t, [6]uint64{a[0], 0})
		}, ""},
		unix.SYS_DUP:  {"dup", sysDup, ""},
		unix.SYS_DUP3: {"dup3", sysDup3, ""},
		unix.SYS_DUP2: {"dup2", func(t *Task, a [6]uint64) int64 {
			if a[0] == a[1] {
				if t.proc.fd(a[0]) == nil {
					return -linux.EBADF
				}
				return int64(a[1])
			}
			return sysDup3(t, [6]uint64{a[0], a[1], 0})
		}, ""},

		// Memory (files.go for file mappings).
		unix.SYS_BRK:    {"brk", sysBrk, ""},
		unix.SYS_MMAP:   {"mmap", sysMmap, ""},
		unix.SYS_MUNMAP: {"munmap", sysMunmap, ""},
		unix.SYS_MSYNC:  {"msync", sysMsync, ""},
		unix.SYS_MREMAP: {"mremap", sysMremap, "in place, or moved by a copy with MREMAP_MAYMOVE; not MREMAP_FIXED"},

		// Time.
		unix.SYS_TIME: {"time", func(t *Task, a [6]uint64) int64 {
			now := time.Now().Unix()
			if a[0] != 0 && !putApp(a[0], now) {
				return -linux.EFAULT
			}
			return now
		}, ""},
		unix.SYS_GETTIMEOFDAY: {"gettimeofday", sysGettimeofday, ""},
		unix.SYS_SYSINFO:      {"sysinfo", sysSysinfo, "the guest's memory, no swap, no load figures"},
		unix.SYS_GETPGRP:      {"getpgrp", sysGetpgrp, ""},
		unix.SYS_GETPGID:      {"getpgid", sysGetpgid, "the caller's, or the group setpgid gave a child"},
		unix.SYS_SETPGID:      {"setpgid", sysSetpgid, "groups are names only: no terminal has a foreground group"},
		unix.SYS_GETSID:       {"getsid", sysGetsid, ""},
		unix.SYS_SETSID:       {"setsid", sysSetsid, ""},
		unix.SYS_GETRUSAGE:    {"getrusage", sysGetrusage, "the host's figures for pith; ru_maxrss the guest's memory in use; RUSAGE_THREAD: the thread's run as tier 0 counts it"},
		unix.SYS_TIMES:        {"times", sysTimes, "clock ticks since boot; CPU times as getrusage's"},

		// Threads, processes and signals (signals.go, spawn.go).
		unix.SYS_ARCH_PRCTL:      {"arch_prctl", sysArchPrctl, ""},
		unix.SYS_SET_TID_ADDRESS: {"set_tid_address", sysSetTidAddress, ""},
		unix.SYS_CLONE:           {"clone", sysClone, ""},
		unix.SYS_EXIT:            {"exit", sysExit, ""},
		unix.SYS_EXIT_GROUP:      {"exit_group", sysExitGroup, ""},
		unix.SYS_EXECVE:          {"execve", sysExecve, ""},
		unix.SYS_WAIT4:           {"wait4", sysWait4, ""},
		unix.SYS_WAITID:          {"waitid", sysWaitid, ""},
		unix.SYS_PIDFD_OPEN:      {"pidfd_open", enosys, "ENOSYS, quietly: Go waits with wait4"},
		unix.SYS_CLONE3:          {"clone3", enosys, "ENOSYS, quietly: glibc makes threads with clone"},
		unix.SYS_MEMBARRIER:      {"membarrier", enosys, "ENOSYS, quietly, as a kernel built without it: musl's dlopen falls back to signalling each thread (tkill)"},
		unix.SYS_FORK:            {"fork", func(t *Task, a [6]uint64) int64 { return fork(t, 0, 0) }, "the child is a copy of the whole guest, started as a unikernel of its own; its pipes are bridged through host pipes"},
		unix.SYS_VFORK: {"vfork", func(t *Task, a [6]uint64) int64 { return vfork(t, 0) },
			"the child runs on the parent's memory until it runs a program (execve) or exits, as on Linux"},
		unix.SYS_RT_SIGACTION:     {"rt_sigaction", sysRtSigaction, ""},
		unix.SYS_RT_SIGPROCMASK:   {"rt_sigprocmask", sysRtSigprocmask, ""},
		unix.SYS_RT_SIGRETURN:     {"rt_sigreturn", sysRtSigreturn, ""},
		unix.SYS_SIGALTSTACK:      {"sigaltstack", sysSigaltstack, ""},
		unix.SYS_PAUSE:            {"pause", sysPause, ""},
		unix.SYS_RT_SIGSUSPEND:    {"rt_sigsuspend", sysRtSigsuspend, ""},
		unix.SYS_KILL:             {"kill", sysKill, ""},
		unix.SYS_ALARM:            {"alarm", sysAlarm, ""},
		unix.SYS_SETITIMER:        {"setitimer", sysSetitimer, "ITIMER_REAL; ENOSYS for ITIMER_VIRTUAL and ITIMER_PROF"},
		unix.SYS_GETITIMER:        {"getitimer", sysGetitimer, "as setitimer"},
		unix.SYS_TIMER_CREATE:     {"timer_create", sysTimerCreate, "real-time, monotonic and boot-time clocks (EINVAL for CPU-time ones); SIGEV_SIGNAL, SIGEV_THREAD_ID, SIGEV_NONE; no si_value in the signal"},
		unix.SYS_TIMER_SETTIME:    {"timer_settime", sysTimerSettime, ""},
		unix.SYS_TIMER_GETTIME:    {"timer_gettime", sysTimerGettime, ""},
		unix.SYS_TIMER_GETOVERRUN: {"timer_getoverrun", sysTimerGetoverrun, "always 0"},
		unix.SYS_TIMER_DELETE:     {"timer_delete", sysTimerDelete, ""},
		unix.SYS_TGKILL:           {"tgkill", sysTgkill, ""},
		unix.SYS_TKILL: {"tkill", func(t *Task, a [6]uint64) int64 {
			return sysTgkill(t, [6]uint64{1, a[0], a[1]})
		}, ""},

		// Sockets: TCP, UDP and ICMP echo, IPv4 and IPv6, on netstack (socket.go), and
		// AF_UNIX sockets (unix.go).
		unix.SYS_SOCKET:     {"socket", sysSocket, "AF_INET, AF_INET6, AF_UNIX, and AF_NETLINK's NETLINK_ROUTE for listing interfaces, addresses and routes"},
		unix.SYS_SOCKETPAIR: {"socketpair", sysSocketpair, "AF_UNIX; EOPNOTSUPP for the families that have no pairs, as Linux"},
		unix.SYS_BIND:       {"bind", bySocket(sysBind, unixBind), "AF_UNIX names are kept in tier 1, not made host files"},
		unix.SYS_LISTEN:     {"listen", bySocket(sysListen, unixListen), ""},
		unix.SYS_ACCEPT: {"accept", func(t *Task, a [6]uint64) int64 {
			return accept4(t, [6]uint64{a[0], a[1], a[2]})
		}, ""},
		unix.SYS_ACCEPT4:     {"accept4", accept4, ""},
		unix.SYS_CONNECT:     {"connect", bySocket(sysConnect, unixConnect), ""},
		unix.SYS_GETSOCKNAME: {"getsockname", bySocket(sysGetsockname, unixGetsockname), ""},
		unix.SYS_GETPEERNAME: {"getpeername", bySocket(sysGetpeername, unixGetpeername), ""},
		unix.SYS_SHUTDOWN:    {"shutdown", bySocket(sysShutdown, unixShutdown), ""},
		unix.SYS_SENDTO:      {"sendto", bySocket(sysSendto, unixSendto), ""},
		unix.SYS_RECVFROM:    {"recvfrom", bySocket(sysRecvfrom, unixRecvfrom), ""},
		unix.SYS_SENDMSG:     {"sendmsg", bySocket(sysSendmsg, unixSendmsg), "ancillary data on AF_UNIX sockets only: SCM_RIGHTS and SCM_CREDENTIALS"},
		unix.SYS_RECVMSG:     {"recvmsg", bySocket(sysRecvmsg, unixRecvmsg), "ancillary data on AF_UNIX sockets only: SCM_RIGHTS and SCM_CREDENTIALS"},
		unix.SYS_SETSOCKOPT:  {"setsockopt", bySocket(sysSetsockopt, unixSetsockopt), "the options Go's net package and common servers set; others ENOPROTOOPT"},
		unix.SYS_GETSOCKOPT:  {"getsockopt", bySocket(sysGetsockopt, unixGetsockopt), ""},
		unix.SYS_SPLICE: {"splice", func(*Task, [6]uint64) int64 { return -linux.EINVAL },
			"EINVAL, as Linux for what it cannot splice: Go's io.Copy then copies through a buffer"},

		// Waiting on descriptors besides epoll (poll.go).
		unix.SYS_POLL:     {"poll", sysPoll, "waits for a change to a pipe, socket or stdin while nothing is ready"},
		unix.SYS_PPOLL:    {"ppoll", sysPpoll, "waits for a change to a pipe, socket or stdin while nothing is ready; the signal mask is not applied"},
		unix.SYS_SELECT:   {"select", sysSelect, "waits for a change to a pipe, socket or stdin while nothing is ready"},
		unix.SYS_PSELECT6: {"pselect6", sysPselect6, "waits for a change to a pipe, socket or stdin while nothing is ready; the signal mask is not applied"},
	}
}

// bySocket serves a call on a socket (a[0] its descriptor): local for an AF_UNIX socket,
// inet otherwise (netstack's sockets, and the errors for what is none).
func bySocket(inet handler, local func(t *Task, f *file, a [6]uint64) int64) handler {
	return func(t *Task, a [6]uint64) int64 {
		if f := t.proc.fd(a[0]); f != nil && f.kind == kindUnix {
			return local(t, f, a)
		}
		return inet(t, a)
	}
}

// tier0 is a call tier 0 serves: tier 1 passes it on unchanged.
func tier0(name string, nr uint64) sysEntry {
	return sysEntry{name, passThrough(nr), "tier 0 serves it"}
}

// tier0FD passes call nr to tier 0 and numbers the descriptor it makes as the app's own.
func tier0FD(nr uint64, flagsArg int) handler {
	pass := passThrough(nr)
	return func(t *Task, a [6]uint64) int64 {
		// EPOLL_CLOEXEC and EFD_CLOEXEC are O_CLOEXEC.
		return t.proc.tier0FD(pass(t, a), a[flagsArg]&syscall.O_CLOEXEC != 0)
	}
}

// sysGettimeofday answers the time and, for a timezone, UTC (as Linux's is unless set).
func sysGettimeofday(t *Task, a [6]uint64) int64 {
	now := time.Now()
	if a[0] != 0 {
		if !putApp(a[0], [2]int64{now.Unix(), int64(now.Nanosecond() / 1000)}) {
			return -linux.EFAULT
		}
	}
	if a[1] != 0 {
		if !putApp(a[1], [2]int32{}) {
			return -linux.EFAULT
		}
	}
	return 0
}

// Trace makes every app system call print a line on stderr (pith run --trace).
var Trace bool

// noReturn marks a traced call that does not return.
const noReturn = -1 << 62

// trace prints one system call the way strace does: tid, name, arguments, result.
func trace(t *Task, nr uint64, a [6]uint64, ret int64) {
	name := syscalls[nr].name
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

// syscall serves the system call the task's app thread just made.
func (t *Task) syscall() {
	if t.proc.ending.Load() {
		select {} // another thread is ending the process (Process.end)
	}
	r := &t.ctx.Regs
	nr := r.RAX
	a := [6]uint64{r.RDI, r.RSI, r.RDX, r.R10, r.R8, r.R9}
	call := syscalls[nr]
	h := call.handler
	if h == nil {
		t.proc.mu.Lock()
		first := !t.proc.unsupported[nr]
		t.proc.unsupported[nr] = true
		t.proc.mu.Unlock()
		if first {
			name := call.name
			if name == "" {
				name = fmt.Sprintf("#%d", nr)
			}
			fmt.Fprintf(os.Stderr, "pith: the app called %s, which pith does not support yet: it got ENOSYS\n", name)
		}
		errno := int64(-linux.ENOSYS)
		r.RAX = uint64(errno)
		return
	}
	if Trace && (nr == syscall.SYS_EXIT_GROUP || nr == syscall.SYS_EXIT) {
		trace(t, nr, a, noReturn) // they do not return, as strace shows them
	}
	t.beginCall()
	ret := serve(h, t, a)
	if ret == -errRestart {
		t.restartNr, ret = nr+1, -linux.EINTR // deliverSignals restarts it where Linux would
	}
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
	defer catchAppFault(func() { ret = -linux.EFAULT })
	return h(t, a)
}

func sysReadv(t *Task, a [6]uint64) int64  { return vectored(t, a, false) }
func sysWritev(t *Task, a [6]uint64) int64 { return vectored(t, a, true) }

// vectored serves readv and writev: the iovecs in turn, until one moves fewer bytes than
// it named (a short read, the end of a file), as Linux does.
func vectored(t *Task, a [6]uint64, write bool) int64 {
	fd, iov, cnt := a[0], a[1], a[2]
	if f := t.proc.fd(fd); f != nil && (f.kind == kindSocket || f.kind == kindUnix) { // one message, not one per iovec
		bufs, e := appBufs(iov, cnt)
		if e != 0 {
			return e
		}
		switch {
		case f.kind == kindUnix && write:
			return f.unix.send(t, f, bufs, 0, nil, nil)
		case f.kind == kindUnix:
			return f.unix.read(t, f, bufs)
		case write:
			return f.sock.send(t, f, bufs, 0, nil)
		}
		n, _, _ := f.sock.recv(t, f, bufs, 0)
		return n
	}
	vecs, e := appIovecs(iov, cnt)
	if e != 0 {
		return e
	}
	total := int64(0)
	for _, v := range vecs {
		r := transfer(t, [6]uint64{fd, v[0], v[1]}, write, false)
		if r < 0 {
			if total > 0 {
				return total
			}
			return r
		}
		total += r
		if uint64(r) < v[1] {
			break
		}
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
		if !putApp(a[1], t.ctx.FSBase) {
			return -linux.EFAULT
		}
		return 0
	}
	return -linux.EINVAL
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
	defer catchAppFault(func() { ok = false })
	return putApp(addr, tid)
}

func sysExitGroup(t *Task, a [6]uint64) int64 {
	t.proc.exit(int(int32(a[0])))
	return 0
}

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
	if flags&(linux.CLONE_VM|cloneVfork|linux.CLONE_THREAD) == linux.CLONE_VM|cloneVfork {
		return vfork(t, stack)
	}
	if flags&(linux.CLONE_VM|linux.CLONE_THREAD) == 0 {
		return fork(t, flags, ctid)
	}
	if flags&(linux.CLONE_VM|linux.CLONE_THREAD) != linux.CLONE_VM|linux.CLONE_THREAD {
		return -linux.ENOSYS // a thread without shared memory, or memory shared by processes
	}
	c, err := newTask(t.proc)
	if err != nil {
		return -linux.EAGAIN
	}
	c.cloneCPU(t, stack)
	if flags&linux.CLONE_SETTLS != 0 {
		c.ctx.FSBase = tls
	}
	c.altSP, c.altSize = 0, 0
	if flags&linux.CLONE_CHILD_CLEARTID != 0 {
		c.clearTID = ctid
	}
	return int64(c.start(&t.proc.wg, func(tid int32) {
		if flags&linux.CLONE_PARENT_SETTID != 0 {
			storeTID(ptid, tid)
		}
		if flags&linux.CLONE_CHILD_SETTID != 0 {
			storeTID(ctid, tid)
		}
	}))
}

// sysFadvise checks posix_fadvise's arguments as Linux does; the advice itself changes
// nothing here (the host's page cache is the host's).
func sysFadvise(t *Task, a [6]uint64) int64 {
	f := t.proc.fd(a[0])
	switch {
	case f == nil:
		return -linux.EBADF
	case f.kind == kindPipe || f.kind == kindSocket || f.kind == kindUnix:
		return -linux.ESPIPE
	case a[3] > 5 || int64(a[2]) < 0:
		return -linux.EINVAL
	}
	return 0
}
