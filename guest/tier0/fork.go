package tier0

import (
	"sync/atomic"
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
	"github.com/pithvm/pith/guest/x86"
)

// Fork without exec clones the whole guest: the monitor copies guest memory into a new
// VM that resumes where this one was. Only memory is copied, never a vCPU's registers:
// every vCPU but the forking one first parks in tier 0 with no thread (its thread goes
// back on the run queue), and the forking thread's registers are in its record, as for
// any system call. The copy's vCPUs then start as at boot and find FlagForked: vCPU 0
// takes over the tier-0 lock the forker held, makes the forking thread return 0, and
// every vCPU schedules.

var (
	forking    uint32 // set while a fork parks the other vCPUs
	parkedCPUs uint32 // how many have parked
	// forksDone counts the forks ended: a parked vCPU waits for it to change, not for
	// forking to clear, which the next fork may set again before a vCPU the host has
	// preempted looks (it would then wait, uncounted, for a fork that waits for it).
	forksDone  uint32
	forkThread int32 // the thread that forked, which the copy resumes

	// The app's process ID and its parent's, as getpid and getppid answer: a fork's
	// child has its own (SysPithSetPID).
	appPID  int64 = abi.AppPID
	appPPID int64 = abi.AppPPID
)

// sysFork asks the monitor to copy the guest (req is a FileFork request); it returns the
// monitor's answer, a child handle or a negative errno, and 0 in the copy.
//
//go:nosplit
func sysFork(req uint64) int64 {
	if !mapped(uintptr(req), unsafe.Sizeof(abi.FileRequest{})) {
		return -linux.EFAULT
	}
	r := (*abi.FileRequest)(x86.Pointer(uintptr(req)))
	if r.Len > 1<<20 || !mapped(uintptr(r.Buf), uintptr(r.Len)) {
		return -linux.EFAULT
	}
	c := thisCPU()
	if ncpu > 1 {
		atomic.StoreUint32(&parkedCPUs, 0)
		atomic.StoreUint32(&forking, 1)
		for i := int32(0); i < ncpu; i++ {
			if i != int32(c.hw.ID) {
				sendWakeup(i)
			}
		}
		unlockTier0()
		for atomic.LoadUint32(&parkedCPUs) != uint32(ncpu-1) {
			pause()
		}
		lockTier0()
	}
	consoleFlush() // the copy must not print what this guest printed
	forkThread = c.cur
	atomic.StoreUint32(&bootDone, 0) // the copy's other vCPUs wait for forkResume
	r.Result = 0
	info().FileRequest = req
	outl(abi.PortFork, 0)
	atomic.StoreUint32(&bootDone, 1)
	atomic.StoreUint32(&forking, 0)
	atomic.AddUint32(&forksDone, 1)
	if r.Result == 0 {
		return -linux.EIO
	}
	return r.Result
}

// park takes this vCPU out of the way of a fork: its thread goes back on the run queue
// and it waits, without the lock, until the fork is done, and the next, if one began
// meanwhile. The caller holds the lock and has seen forking set.
//
//go:nosplit
func park() {
	c := thisCPU()
	if c.cur >= 0 {
		t := threadAt(c.cur)
		if t.state == threadRunnable {
			enqueue(c.cur)
		}
		t.onCPU = -1
		chargeRun(c, t, rdtsc())
		c.cur = -1
		c.curThread = 0
	}
	for atomic.LoadUint32(&forking) != 0 {
		done := atomic.LoadUint32(&forksDone)
		atomic.AddUint32(&parkedCPUs, 1)
		unlockTier0()
		for atomic.LoadUint32(&forksDone) == done {
			pause()
		}
		lockTier0()
	}
	syncTLB(c)
}

// forkResume is vCPU 0's first Go code in a copy made by a fork (FlagForked): memory is
// the parent's at the fork, with the tier-0 lock held by the forker, which this vCPU
// now is.
//
//go:nosplit
func forkResume() {
	bi := info()
	bi.Stats.CPUsOnline = 1
	initTimer()
	for i := int32(0); i < ncpu; i++ {
		c := cpuAt(i)
		c.cur, c.curThread = -1, 0
		c.armed, c.sliceEnd, c.idle, c.wakePending = 0, 0, 0, 0
		c.tlbGen = tlbGen
		c.hw.IdleSince, c.hw.IdleUntil = 0, 0
	}
	// The app's other threads are not the child's: each leaves app code before it runs
	// any (tier 1 then ends them), as sysKick has them do.
	for i := int32(0); i < liveLimit; i++ {
		o := threadAt(i)
		if o.state != threadFree {
			syncApp(o)
		}
		if o.state != threadFree && o.app != 0 {
			o.kicked = true
			if o.state == threadBlocked {
				wake(i, -linux.EINTR)
			}
		}
	}
	startCPUTime() // the child's CPU time starts from nothing, as Linux's does
	t := threadAt(forkThread)
	t.onCPU = -1
	t.regs.RAX = 0
	enqueue(forkThread)
	atomic.StoreUint32(&forking, 0)
	atomic.AddUint32(&forksDone, 1)
	atomic.StoreUint32(&bootDone, 1)
	schedule(false)
}
