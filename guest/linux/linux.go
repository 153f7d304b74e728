// Package linux holds the Linux x86-64 constants and layouts both guest tiers use, from
// Linux's uapi headers; named as Linux names them. It depends on nothing: tier 0 may use it.
package linux

// Errors (include/uapi/asm-generic/errno-base.h, errno.h).
const (
	EPERM     = 1
	ENOENT    = 2
	ESRCH     = 3
	EINTR     = 4
	EDOM      = 33
	EIO       = 5
	ENXIO     = 6
	ENOEXEC   = 8
	ELOOP     = 40
	EBADF     = 9
	ECHILD    = 10
	EAGAIN    = 11
	ENOMEM    = 12
	EFAULT    = 14
	EBUSY     = 16
	EEXIST    = 17
	ENODEV    = 19
	ENOTDIR   = 20
	EISDIR    = 21
	EINVAL    = 22
	EMFILE    = 24
	ENOTTY    = 25
	ENOSPC    = 28
	ESPIPE    = 29
	ENOSYS    = 38
	ENODATA   = 61
	ETIMEDOUT = 110
)

// Networking's errors (include/uapi/asm-generic/errno.h).
const (
	EACCES          = 13
	EPIPE           = 32
	ENOTSOCK        = 88
	EDESTADDRREQ    = 89
	EMSGSIZE        = 90
	EPROTOTYPE      = 91
	ENOPROTOOPT     = 92
	EPROTONOSUPPORT = 93
	ESOCKTNOSUPPORT = 94
	EOPNOTSUPP      = 95
	EAFNOSUPPORT    = 97
	EADDRINUSE      = 98
	EADDRNOTAVAIL   = 99
	ENETDOWN        = 100
	ENETUNREACH     = 101
	ECONNABORTED    = 103
	ECONNRESET      = 104
	ENOBUFS         = 105
	EISCONN         = 106
	ENOTCONN        = 107
	ESHUTDOWN       = 108
	ECONNREFUSED    = 111
	EHOSTUNREACH    = 113
	EALREADY        = 114
	EINPROGRESS     = 115
)

// Auxiliary vector keys (include/uapi/linux/auxvec.h).
const (
	AT_NULL         = 0
	AT_PHDR         = 3
	AT_PHENT        = 4
	AT_PHNUM        = 5
	AT_PAGESZ       = 6
	AT_BASE         = 7
	AT_FLAGS        = 8
	AT_ENTRY        = 9
	AT_UID          = 11
	AT_EUID         = 12
	AT_GID          = 13
	AT_EGID         = 14
	AT_PLATFORM     = 15
	AT_HWCAP        = 16
	AT_CLKTCK       = 17
	AT_SECURE       = 23
	AT_RANDOM       = 25
	AT_EXECFN       = 31
	AT_SYSINFO_EHDR = 33 // the vDSO
)

// clone flags (include/uapi/linux/sched.h).
const (
	CLONE_VM             = 0x100
	CLONE_THREAD         = 0x10000
	CLONE_SETTLS         = 0x80000
	CLONE_PARENT_SETTID  = 0x100000
	CLONE_CHILD_CLEARTID = 0x200000
	CLONE_CHILD_SETTID   = 0x1000000
)

// Signals and their actions (include/uapi/asm-generic/signal.h, siginfo.h).
const (
	SIGILL  = 4
	SIGTRAP = 5
	SIGFPE  = 8
	SIGSEGV = 11
	SIGALRM = 14
	SIGCHLD = 17

	SIG_DFL      = 0
	SIG_IGN      = 1
	SA_SIGINFO   = 4
	SA_RESTORER  = 0x04000000
	SA_ONSTACK   = 0x08000000
	SA_NODEFER   = 0x40000000
	SA_RESETHAND = 0x80000000
	SA_RESTART   = 0x10000000

	SS_ONSTACK = 1
	SS_DISABLE = 2
	SI_TKILL   = -6
	SI_KERNEL  = 0x80
)

// The signal frame Linux pushes on x86-64 (arch/x86/include/asm/sigframe.h): below the
// interrupted stack pointer's red zone, struct rt_sigframe: pretcode, then struct
// ucontext (uc_flags, uc_link, uc_stack, uc_mcontext, uc_sigmask), then siginfo.
const (
	RedZone          = 128 // bytes below the stack pointer a leaf function may use
	SigframeUcontext = 8
	UcontextStack    = 16
	UcontextMcontext = 40
	UcontextSigmask  = 40 + 256
	SigframeSiginfo  = 8 + 304
	SigframeSize     = SigframeSiginfo + 128
	// McontextFPState is the offset of struct sigcontext's fpstate pointer: after 18
	// registers, csgsfsss, err, trapno, oldmask and cr2.
	McontextFPState = 8 * 23
)

// epoll (include/uapi/linux/eventpoll.h).
const (
	EPOLLIN       = 0x1
	EPOLLPRI      = 0x2
	EPOLLOUT      = 0x4
	EPOLLERR      = 0x8
	EPOLLHUP      = 0x10
	EPOLLRDNORM   = 0x40
	EPOLLWRNORM   = 0x100
	EPOLLWRBAND   = 0x200
	EPOLLRDHUP    = 0x2000
	EPOLLET       = 1 << 31
	EPOLL_CTL_ADD = 1
	EPOLL_CTL_DEL = 2
	EPOLL_CTL_MOD = 3
)
