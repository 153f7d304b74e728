package tier0

import (
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
	"github.com/pithvm/pith/guest/x86"
)

// Linux x86-64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl) that tier 0
// serves, and pith's private calls.
const (
	nrRead           = 0
	nrWrite          = 1
	nrClose          = 3
	nrPread64        = 17
	nrMmap           = 9
	nrMprotect       = 10
	nrMunmap         = 11
	nrBrk            = 12
	nrRtSigaction    = 13
	nrRtSigprocmask  = 14
	nrRtSigreturn    = 15
	nrIoctl          = 16
	nrSchedYield     = 24
	nrMadvise        = 28
	nrNanosleep      = 35
	nrGetpid         = 39
	nrClone          = 56
	nrExit           = 60
	nrKill           = 62
	nrUname          = 63
	nrFcntl          = 72
	nrGetuid         = 102
	nrGetgid         = 104
	nrGeteuid        = 107
	nrGetegid        = 108
	nrGetppid        = 110
	nrSigaltstack    = 131
	nrPrctl          = 157
	nrArchPrctl      = 158
	nrGettid         = 186
	nrTkill          = 200
	nrFutex          = 202
	nrSchedGetaff    = 204
	nrSetTidAddress  = 218
	nrClockGettime   = 228
	nrClockGetres    = 229
	nrClockNanosleep = 230
	nrExitGroup      = 231
	nrEpollWait      = 232
	nrEpollCtl       = 233
	nrTgkill         = 234
	nrOpenat         = 257
	nrSetRobustList  = 273
	nrEpollPwait     = 281
	nrEventfd2       = 290
	nrEpollCreate1   = 291
	nrPrlimit64      = 302
	nrGetrandom      = 318
	nrRseq           = 334

	nrPithStats       = abi.SysPithStats
	nrPithMainReached = abi.SysPithMainReached
	nrPithFault       = abi.SysPithFault
	nrPithRunApp      = abi.SysPithRunApp
	nrPithKick        = abi.SysPithKick
	nrPithMapApp      = abi.SysPithMapApp
	nrPithMapWindow   = abi.SysPithMapWindow
	nrPithFile        = abi.SysPithFile
	nrPithUnmapToT1   = abi.SysPithUnmapToTier1
	nrPithReadyFD     = abi.SysPithReadyFD
	nrPithSetReady    = abi.SysPithSetReady
	nrPithNetKick     = abi.SysPithNetKick
	nrPithFork        = abi.SysPithFork
	nrPithSetPID      = abi.SysPithSetPID
)

// unmapToTier1 is set while the app has shared file mappings, which tier 1 writes back
// to their files when they are unmapped.
var unmapToTier1 bool

const (
	protNone       = 0
	protRW         = 3
	mapFixed       = 0x10
	mapAnonymous   = 0x20
	mapFixedNoRepl = 0x100000
	madvDontneed   = 4
	madvFree       = 8
	archSetFS      = 0x1002
	archGetFS      = 0x1003
	rlimitStack    = 3
	rlimitNofile   = 7
	rlimInfinity   = ^uint64(0)
)

var (
	yieldRequested bool
	reported       [8]uint64 // bitmap of unknown system calls already reported (< 512)
	nofileCur      uint64    = 1024
	nofileMax      uint64    = 4096
)

// appDirect reports whether tier 0 serves app system call nr itself. These are the calls
// tier 1 would pass through unchanged (one address space: memory, futexes, clocks, sleeps,
// identity): serving them here saves the round trip through tier 1: one trap into tier 0
// instead of two. A signal for a thread blocked in one still reaches tier 1: KICK wakes
// the thread and takes it out of the app on its way back.
//
//go:nosplit
func appDirect(nr uint64) bool {
	if info().Flags&abi.FlagTrace != 0 {
		return false
	}
	switch nr {
	case nrMmap, nrMunmap, nrMprotect, nrMadvise, nrFutex, nrClockGettime, nrClockGetres,
		nrNanosleep, nrClockNanosleep, nrSchedYield, nrGetrandom, nrSchedGetaff,
		nrGettid, nrGetpid, nrGetppid, nrGetuid, nrGetgid, nrGeteuid, nrGetegid,
		nrUname, nrSetRobustList, nrRseq:
		return true
	}
	return false
}

// handleSyscall serves the current thread's SYSCALL. A call that blocks leaves RAX to
// whoever wakes the thread.
//
//go:nosplit
func handleSyscall() {
	info().Stats.Syscalls++
	t := current()
	syncApp(t)
	r := &t.regs
	if t.app != 0 {
		info().Stats.AppSyscalls++
		// A file mapping needs the file, which tier 1 has.
		// So does a mapping that may replace part of a shared one, which tier 1 writes back.
		if !appDirect(r.RAX) || r.RAX == nrMmap && (r.R10&mapAnonymous == 0 || unmapToTier1 && r.R10&mapFixed != 0) ||
			r.RAX == nrMunmap && unmapToTier1 {
			leaveApp(t, abi.AppSyscall, 0)
			schedule(false)
			return
		}
	}
	ret := dispatch(r.RAX, r.RDI, r.RSI, r.RDX, r.R10, r.R8, r.R9)
	if t.state == threadRunnable && ret != keepRegs {
		r.RAX = uint64(ret)
	}
	yield := yieldRequested
	yieldRequested = false
	schedule(yield)
}

//go:nosplit
func dispatch(nr, a0, a1, a2, a3, a4, a5 uint64) int64 {
	switch nr {
	case nrRead:
		return sysRead(a0, a1, a2)
	case nrWrite:
		return fdWrite(a0, a1, a2)
	case nrClose:
		return fdClose(a0)
	case nrPread64:
		if fdAt(int64(a0)) == nil {
			return -linux.EBADF
		}
		return -linux.ESPIPE // the console, eventfds and epoll are not seekable
	case nrMmap:
		return sysMmap(a0, a1, a2, a3, a4, a5)
	case nrMprotect:
		return sysMprotect(a0, a1, a2)
	case nrMunmap:
		return sysMunmap(a0, a1)
	case nrMadvise:
		return sysMadvise(a0, a1, a2)
	case nrBrk:
		return 0
	case nrRtSigaction:
		return sysRtSigaction(a0, a1, a2, a3)
	case nrRtSigprocmask:
		return sysRtSigprocmask(a0, a1, a2, a3)
	case nrSigaltstack:
		return sysSigaltstack(a0, a1)
	case nrIoctl:
		return -linux.ENOTTY
	case nrSchedYield:
		yieldRequested = true
		return 0
	case nrNanosleep:
		return sysClockNanosleep(1, 0, a0, a1)
	case nrClockNanosleep:
		return sysClockNanosleep(a0, a1, a2, a3)
	case nrClockGettime:
		return sysClockGettime(a0, a1)
	case nrClockGetres:
		if a1 != 0 {
			if !mapped(uintptr(a1), 16) {
				return -linux.EFAULT
			}
			*(*timespec)(x86.Pointer(uintptr(a1))) = timespec{0, 1}
		}
		return 0
	case nrGetpid:
		return appPID
	case nrGettid:
		return int64(current().tid)
	case nrGetppid:
		return appPPID
	case nrGetuid, nrGeteuid:
		return abi.AppUID
	case nrGetgid, nrGetegid:
		return abi.AppGID
	case nrClone:
		return sysClone(a0, a1, a2, a3, a4)
	case nrExit:
		return sysExit(a0)
	case nrExitGroup:
		exitGuest(uint32(a0))
		return 0
	case nrKill:
		return sysKill(a0, a1)
	case nrTkill:
		return sysTgkill(a0, a1)
	case nrTgkill:
		return sysTgkill(a1, a2)
	case nrRtSigreturn:
		return sysRtSigreturn()
	case nrUname:
		return sysUname(a0)
	case nrFcntl:
		f := fdAt(int64(a0))
		if f == nil {
			return -linux.EBADF
		}
		if a1 == 3 { // F_GETFL
			if f.kind == fdReady {
				// Never blocks (it is only ever polled), so that tier 1's os.NewFile
				// makes it one its netpoller waits on.
				return 0x802 // O_RDWR|O_NONBLOCK
			}
			return 2 // O_RDWR
		}
		return 0
	case nrPrctl:
		return -linux.EINVAL
	case nrArchPrctl:
		return sysArchPrctl(a0, a1)
	case nrFutex:
		return sysFutex(a0, a1, a2, a3, a4, a5)
	case nrSchedGetaff:
		return sysSchedGetaffinity(a0, a1, a2)
	case nrSetTidAddress:
		current().clearTID = uintptr(a0)
		return int64(current().tid)
	case nrSetRobustList:
		return 0
	case nrRseq:
		return -linux.ENOSYS
	case nrEpollCreate1:
		return sysEpollCreate1(a0)
	case nrEpollCtl:
		return sysEpollCtl(a0, a1, a2, a3)
	case nrEpollWait, nrEpollPwait:
		return sysEpollPwait(a0, a1, a2, a3)
	case nrEventfd2:
		return sysEventfd2(a0, a1)
	case nrOpenat:
		return -linux.ENOENT
	case nrPrlimit64:
		return sysPrlimit64(a0, a1, a2, a3)
	case nrGetrandom:
		return sysGetrandom(a0, a1)
	case nrPithStats:
		if !mapped(uintptr(a0), unsafe.Sizeof(abi.Stats{})) {
			return -linux.EFAULT
		}
		*(*abi.Stats)(x86.Pointer(uintptr(a0))) = info().Stats
		return 0
	case nrPithRunApp:
		return sysRunApp(a0)
	case nrPithKick:
		return sysKick(a0)
	case nrPithUnmapToT1:
		unmapToTier1 = a0 != 0
		return 0
	case nrPithMapApp:
		return sysMapApp(a0, a1, a2)
	case nrPithMapWindow:
		return sysMapWindow(a0, a1, a2)
	case nrPithFile:
		return sysFile(a0)
	case nrPithReadyFD:
		return allocReadyFD()
	case nrPithSetReady:
		return sysSetReady(a0, a1, a2)
	case nrPithNetKick:
		outl(abi.PortNetKick, 0)
		return 0
	case nrPithFork:
		return sysFork(a0)
	case nrPithSetPID:
		appPID, appPPID = int64(a0), int64(a1)
		return 0
	case nrPithFault:
		return int64(*(*uint64)(x86.Pointer(uintptr(a0)))) // a0 is an unmapped address
	case nrPithMainReached:
		info().Stats.MainTSC = rdtsc()
		if info().Flags&abi.FlagTiming != 0 {
			outl(abi.PortMainReached, 0)
		}
		return 0
	}
	if nr < 512 && reported[(nr/64)&7]&(1<<(nr%64)) == 0 {
		reported[(nr/64)&7] |= 1 << (nr % 64)
		printk("pith: tier 0 does not implement system call ")
		printkHex(nr)
		printk("; it returns ENOSYS\n")
	}
	return -linux.ENOSYS
}

//go:nosplit
func sysRead(fd, buf, n uint64) int64 {
	if !mapped(uintptr(buf), uintptr(n)) {
		return -linux.EFAULT
	}
	return fdRead(fd, buf, n)
}

// sysMmap_ implements mmap(2) for anonymous private memory.
//
//go:nosplit
func sysMmap(hint, length, prot, flags, fd, off uint64) int64 {
	if length == 0 || hint&(pageSize-1) != 0 {
		return -linux.EINVAL
	}
	if flags&mapAnonymous == 0 {
		return -linux.ENODEV
	}
	n := (length + pageSize - 1) &^ (pageSize - 1)
	if n < length || n > abi.UserVAEnd {
		return -linux.ENOMEM
	}
	start := hint
	fits := hint >= userFloor && hint+n <= abi.UserVAEnd && hint+n > hint && !inPhysmap(hint, hint+n)
	switch {
	case flags&mapFixed != 0:
		if !fits {
			return -linux.ENOMEM
		}
		unbackRange(start, start+n)
		removeRegion(start, start+n)
	case flags&mapFixedNoRepl != 0:
		if !fits {
			return -linux.ENOMEM
		}
		if overlaps(start, start+n) {
			return -linux.EEXIST
		}
	default:
		if hint == 0 || !fits || overlaps(start, start+n) {
			start = findFree(n)
			if start == 0 {
				return -linux.ENOMEM
			}
		}
	}
	if !insertRegion(start, start+n, prot) {
		return -linux.ENOMEM
	}
	return int64(start)
}

// inPhysmap reports whether [start, end) touches the physmap, which tier 1 may use but
// never change.
//
//go:nosplit
func inPhysmap(start, end uint64) bool {
	return start < abi.PhysBase+abi.PhysSpan && end > abi.PhysBase
}

//go:nosplit
func sysMunmap(start, length uint64) int64 {
	if start&(pageSize-1) != 0 || length == 0 || start < userFloor {
		return -linux.EINVAL
	}
	end := (start + length + pageSize - 1) &^ (pageSize - 1)
	if end > abi.UserVAEnd || end < start || inPhysmap(start, end) {
		return -linux.EINVAL
	}
	unbackRange(start, end)
	removeRegion(start, end)
	return 0
}

//go:nosplit
func sysMprotect(start, length, prot uint64) int64 {
	if start&(pageSize-1) != 0 || start < userFloor {
		return -linux.EINVAL
	}
	end := (start + length + pageSize - 1) &^ (pageSize - 1)
	if end > abi.UserVAEnd || end < start || !covered(start, end) || inPhysmap(start, end) {
		return -linux.ENOMEM
	}
	// Pages already backed stay readable after PROT_NONE: tier 0 does not enforce it
	// (there is no isolation inside the guest's one address space on kvm-pvm anyway).
	if !removeRegion(start, end) || !insertRegion(start, end, prot) {
		return -linux.ENOMEM
	}
	return 0
}

//go:nosplit
func sysMadvise(start, length, advice uint64) int64 {
	if start&(pageSize-1) != 0 {
		return -linux.EINVAL
	}
	end := (start + length + pageSize - 1) &^ (pageSize - 1)
	if end > abi.UserVAEnd || end < start {
		return -linux.EINVAL
	}
	if (advice == madvDontneed || advice == madvFree) && start >= userFloor && !inPhysmap(start, end) {
		discardRange(start, end)
	}
	return 0
}

//go:nosplit
func sysClockGettime(clock, tp uint64) int64 {
	if !mapped(uintptr(tp), 16) {
		return -linux.EFAULT
	}
	ns := monotonic()
	switch clock {
	case 0, 5: // CLOCK_REALTIME, CLOCK_REALTIME_COARSE
		ns += wallBase
	case 2: // CLOCK_PROCESS_CPUTIME_ID: every thread's run, tier 1's own included
		ns = int64(ticksToNs(processTicks()))
	case 3: // CLOCK_THREAD_CPUTIME_ID
		ns = int64(ticksToNs(threadTicks()))
	case 1, 4, 6, 7: // MONOTONIC, MONOTONIC_RAW/COARSE, BOOTTIME
	default:
		return -linux.EINVAL
	}
	setTimespec((*timespec)(x86.Pointer(uintptr(tp))), ns)
	return 0
}

//go:nosplit
func sysClockNanosleep(clock, flags, req, rem uint64) int64 {
	if !mapped(uintptr(req), 16) {
		return -linux.EFAULT
	}
	ts := (*timespec)(x86.Pointer(uintptr(req)))
	if ts.nsec < 0 || ts.nsec >= 1_000_000_000 || ts.sec < 0 {
		return -linux.EINVAL
	}
	var deadline uint64
	if flags&1 != 0 { // TIMER_ABSTIME
		ns := ts.nanos()
		if clock == 0 {
			ns -= wallBase
		}
		deadline = deadlineAt(ns)
	} else {
		deadline = deadlineAfter(ts.nanos())
	}
	block(waitSleep, deadline)
	return 0
}

// sysClone_ implements clone(2) for threads (CLONE_VM|CLONE_THREAD); there are no
// processes to fork.
//
//go:nosplit
func sysClone(flags, stack, ptid, ctid, tls uint64) int64 {
	if flags&(linux.CLONE_VM|linux.CLONE_THREAD) != linux.CLONE_VM|linux.CLONE_THREAD {
		return -linux.ENOSYS
	}
	i := newThread()
	if i < 0 {
		return -linux.EAGAIN
	}
	parent := current()
	child := threadAt(i)
	child.regs = parent.regs
	child.regs.RAX = 0
	if stack != 0 {
		child.regs.RSP = stack
	}
	child.fsbase = parent.fsbase
	if flags&linux.CLONE_SETTLS != 0 {
		child.fsbase = tls
	}
	child.sigmask = parent.sigmask
	copyBytes(child.xsave, parent.xsave, xsaveAreaSize)
	if flags&linux.CLONE_PARENT_SETTID != 0 && mapped(uintptr(ptid), 4) {
		*(*int32)(x86.Pointer(uintptr(ptid))) = child.tid
	}
	if flags&linux.CLONE_CHILD_SETTID != 0 && mapped(uintptr(ctid), 4) {
		*(*int32)(x86.Pointer(uintptr(ctid))) = child.tid
	}
	if flags&linux.CLONE_CHILD_CLEARTID != 0 {
		child.clearTID = uintptr(ctid)
	}
	child.state = threadRunnable
	enqueue(i)
	kick()
	return int64(child.tid)
}

// sysExit_ ends the current thread; the last one ends the guest.
//
//go:nosplit
func sysExit(code uint64) int64 {
	t := current()
	if t.clearTID != 0 && mapped(t.clearTID, 4) {
		*(*int32)(x86.Pointer(t.clearTID)) = 0
		sysFutex(uint64(t.clearTID), futexWake, 1, 0, 0, 0)
	}
	t.state = threadFree
	for i := int32(0); i < liveLimit; i++ {
		if threadAt(i).state != threadFree {
			return 0
		}
	}
	exitGuest(uint32(code))
	return 0
}

// exitGuest flushes the console and hands the exit status to the monitor.
//
//go:nosplit
func exitGuest(code uint32) {
	consoleFlush()
	for {
		outl(abi.PortExit, code)
	}
}

//go:nosplit
func sysArchPrctl(code, a uint64) int64 {
	switch code {
	case archSetFS:
		current().fsbase = a
		return 0
	case archGetFS:
		if !mapped(uintptr(a), 8) {
			return -linux.EFAULT
		}
		*(*uint64)(x86.Pointer(uintptr(a))) = current().fsbase
		return 0
	}
	return -linux.EINVAL
}

//go:nosplit
func sysSchedGetaffinity(pid, size, mask uint64) int64 {
	if size < 8 {
		return -linux.EINVAL
	}
	if !mapped(uintptr(mask), 8) {
		return -linux.EFAULT
	}
	cpus := info().CPUs
	if cpus == 0 || cpus > 64 {
		cpus = 1
	}
	*(*uint64)(x86.Pointer(uintptr(mask))) = 1<<cpus - 1
	return 8
}

//go:nosplit
func sysUname(buf uint64) int64 {
	const field = 65
	if !mapped(uintptr(buf), 6*field) {
		return -linux.EFAULT
	}
	zeroBytes(uintptr(buf), 6*field)
	putString(uintptr(buf), "Linux")
	if name := &info().Hostname; name[0] != 0 {
		for i := 0; i < len(name) && name[i] != 0; i++ {
			*(*byte)(x86.Pointer(uintptr(buf) + field + uintptr(i))) = name[i]
		}
	} else {
		putString(uintptr(buf)+field, "pith")
	}
	putString(uintptr(buf)+2*field, "6.1.0-pith")
	putString(uintptr(buf)+3*field, "#1 SMP pith")
	putString(uintptr(buf)+4*field, "x86_64")
	return 0
}

//go:nosplit
func putString(dst uintptr, s string) {
	for i := 0; i < len(s); i++ {
		*(*byte)(x86.Pointer(dst + uintptr(i))) = s[i]
	}
}

//go:nosplit
func sysPrlimit64(pid, resource, newp, oldp uint64) int64 {
	if (newp != 0 && !mapped(uintptr(newp), 16)) || (oldp != 0 && !mapped(uintptr(oldp), 16)) {
		return -linux.EFAULT
	}
	cur, max := rlimInfinity, rlimInfinity
	switch resource {
	case rlimitNofile:
		cur, max = nofileCur, nofileMax
	case rlimitStack:
		cur = 8 << 20
	}
	if oldp != 0 {
		*(*uint64)(x86.Pointer(uintptr(oldp))) = cur
		*(*uint64)(x86.Pointer(uintptr(oldp) + 8)) = max
	}
	if newp != 0 && resource == rlimitNofile {
		c, m := *(*uint64)(x86.Pointer(uintptr(newp))), *(*uint64)(x86.Pointer(uintptr(newp) + 8))
		if c > m || m > nofileMax {
			return -linux.EPERM
		}
		nofileCur, nofileMax = c, m
	}
	return 0
}

// sysGetrandom_ fills buf from the CPU's RDRAND (native on kvm-pvm and hardware KVM),
// mixed with the monitor's boot seed.
//
//go:nosplit
func sysGetrandom(buf, n uint64) int64 {
	if !mapped(uintptr(buf), uintptr(n)) {
		return -linux.EFAULT
	}
	for i := uint64(0); i < n; i += 8 {
		v := randomWord()
		for k := uint64(0); k < 8 && i+k < n; k++ {
			*(*byte)(x86.Pointer(uintptr(buf + i + k))) = byte(v >> (8 * k))
		}
	}
	return int64(n)
}

var seedState uint64

// randomWord mixes RDRAND with a splitmix64 stream seeded by the monitor.
//
//go:nosplit
func randomWord() uint64 {
	seedState += 0x9e3779b97f4a7c15
	z := seedState
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	if r, ok := rdrand(); ok {
		z ^= r
	}
	return z
}
