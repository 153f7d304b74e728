package tier0

import (
	"sync/atomic"
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
)

const (
	maxThreads    = 256 // a power of two: indexes are masked, never bounds-checked
	xsaveAreaSize = 4096
	timeSliceNs   = 5_000_000
	// timerSlackNs is how late a timed wait may end, Linux's default timer_slack_ns. The
	// timer is armed that much after the earliest deadline, and every tier-0 entry before
	// it ends the expired waits anyway: a Go runtime's sysmon sleeps 20 us at a time, and
	// each wake-up by interrupt costs ~20-50 us here. Measured on a Go hello: 22 interrupts
	// without slack, 5 with.
	timerSlackNs = 50_000
	// wakeupGranularityNs is how long a thread keeps its vCPU before a thread that became
	// runnable meanwhile (a timed wait's end) takes it, as Linux's CFS
	// (sched_wakeup_granularity_ns, 1 ms). A switch costs an interrupt, two timer writes
	// and two trap returns here (~25 us): a Go runtime's sysmon, waking every 20 us,
	// preempted the app's main thread ~50 times in a 4 ms hello.
	wakeupGranularityNs = 1_000_000
)

// Thread states.
const (
	threadFree = iota
	threadRunnable
	threadBlocked
)

// What a blocked thread waits for; each has its own result when its deadline passes.
const (
	waitNone = iota
	waitFutex
	waitSleep
	waitEpoll
)

// thread is one tier-1 thread (a Linux task created by clone). regs must stay first: the
// entry paths push the interrupted registers straight into it.
type thread struct {
	regs     abi.Regs
	fsbase   uint64
	xsave    uintptr // 64-byte aligned XSAVE area
	state    uint32
	wait     uint32
	tid      int32
	queued   bool
	deadline uint64 // TSC deadline of a timed wait; 0 if none

	futexAddr   uintptr
	futexBitset uint32
	epollFD     int32
	epollEvents uintptr
	epollMax    int32

	onCPU int32 // vCPU running this thread, -1 if none
	// cpuTicks is the TSC ticks the thread has run, up to its last switch out
	// (CLOCK_THREAD_CPUTIME_ID: its app code and tier 1's work on its system calls).
	cpuTicks uint64

	// While the thread runs app code (RUN_APP), its registers, FS base and vector state
	// are the app's, app points at the AppContext to return them in, and tier 1's own
	// state waits here.
	app        uintptr
	kicked     bool
	tier1      abi.Regs
	tier1FS    uint64
	tier1XSave uintptr
	clearTID   uintptr // CLONE_CHILD_CLEARTID / set_tid_address
	sigmask    uint64
	pending    uint64 // signals posted and not yet delivered
	// A synchronous signal from an exception, with its si_code and si_addr.
	faultSig  uint64
	faultCode int64
	faultAddr uint64
	altSP     uint64
	altFlags  uint64
	altSize   uint64
	// fastCtx is the thread's AppContext once it has run app code with switches
	// without a trap (fastswitch.go); 0 before, or without them.
	fastCtx uintptr
}

// Everything below is shared by the vCPUs and guarded by bigLock.
var (
	threads  [maxThreads]thread
	xsaveMem [maxThreads*xsaveAreaSize + 64]byte

	liveLimit   int32 // threads[liveLimit:] are all free
	runq        [maxThreads]int32
	runqHead    uint32
	runqTail    uint32
	sliceTicks  uint64
	slackTicks  uint64
	wakeupTicks uint64
	ncpu        int32
	// exitedTicks is what threads that have exited ran: with the others' cpuTicks, the
	// guest's CPU time (CLOCK_PROCESS_CPUTIME_ID).
	exitedTicks uint64
	appStarted  bool // a thread has run app code: the CPU times count from then

	// bigLock serialises tier 0 across vCPUs: each entry takes it after saving the
	// thread (enterTier0) and drops it just before returning to a thread. Tier 0's work
	// per entry is a few microseconds against 2-50 us for the trap itself, so one lock
	// costs little at the vCPU counts pith runs; a vCPU spinning on it has interrupts
	// masked, which is why nothing in tier 0 waits for another vCPU to answer an IPI.
	// It holds the owner's vCPU number + 1, which the monitor reports of a guest that
	// stopped answering (abi.Tier0LockSymbol).
	bigLock  uint32
	bootDone uint32
)

//go:nosplit
func lockTier0() {
	for !atomic.CompareAndSwapUint32(&bigLock, 0, uint32(thisCPU().hw.ID)+1) {
		for atomic.LoadUint32(&bigLock) != 0 {
			pause()
		}
	}
}

//go:nosplit
func unlockTier0() { atomic.StoreUint32(&bigLock, 0) }

// exitTier0 is the last Go code before returning to a thread: it enters the handler of a
// pending signal, if any, and drops the tier-0 lock. (Apart from schedule, which picked
// the thread, so that the two deepest call chains do not add up under the nosplit limit.)
//
//go:nosplit
func exitTier0() {
	deliverSignal()
	unlockTier0()
}

// enterTier0 is the first Go code of every trap from a thread.
//
//go:nosplit
func enterTier0() {
	lockTier0()
	syncTLB(thisCPU())
}

//go:nosplit
func threadAt(i int32) *thread { return &threads[uint32(i)&(maxThreads-1)] }

// current is the thread this vCPU is running or handling.
//
//go:nosplit
func current() *thread { return threadAt(thisCPU().cur) }

//go:nosplit
func setCurrent(i int32) {
	c := thisCPU()
	c.cur = i
	t := threadAt(i)
	if t.onCPU >= 0 || t.state != threadRunnable {
		badState(uint64(i)) // a thread can run on one vCPU at a time
	}
	t.onCPU = int32(c.hw.ID)
	c.curThread = uintptr(unsafe.Pointer(t))
	c.hw.FastCtx = uint64(t.fastCtx)
}

// newThread claims a free thread record, or returns -1.
//
//go:nosplit
func newThread() int32 {
	for i := int32(0); i < maxThreads; i++ {
		t := threadAt(i)
		if t.state != threadFree {
			continue
		}
		*t = thread{}
		t.tid = i + 1
		t.xsave = (uintptr(unsafe.Pointer(&xsaveMem[0])) + 63) &^ 63
		t.xsave += uintptr(i) * xsaveAreaSize
		t.epollFD = -1
		t.onCPU = -1
		if i >= liveLimit {
			liveLimit = i + 1
		}
		return i
	}
	return -1
}

//go:nosplit
func enqueue(i int32) {
	t := threadAt(i)
	if t.queued {
		return
	}
	if t.onCPU >= 0 && t.onCPU != int32(thisCPU().hw.ID) {
		badState(uint64(i)) // running elsewhere: another vCPU could pick it up too
	}
	t.queued = true
	runq[runqTail&(maxThreads-1)] = i
	runqTail++
}

//go:nosplit
func dequeue() int32 {
	if runqHead == runqTail {
		return -1
	}
	i := runq[runqHead&(maxThreads-1)]
	runqHead++
	threadAt(i).queued = false
	return i
}

// block parks the current thread until wake or its deadline (TSC, 0 = none).
//
//go:nosplit
func block(kind uint32, deadline uint64) {
	t := current()
	t.state = threadBlocked
	t.wait = kind
	t.deadline = deadline
}

// wake makes a blocked thread runnable with result as its system call's return value.
//
//go:nosplit
func wake(i int32, result int64) {
	t := threadAt(i)
	polled := t.wait == waitEpoll
	t.state = threadRunnable
	t.wait = waitNone
	t.deadline = 0
	t.regs.RAX = uint64(result)
	if polled {
		markWaiting() // tier 1 need not call to raise what no one sleeps on any more
	}
	if t.onCPU >= 0 {
		// Still this vCPU's current thread: it blocked in the call schedule is now
		// finishing (a timeout that had already passed). It just carries on; queueing it
		// would let another vCPU run it at the same time.
		return
	}
	enqueue(i)
	kick()
}

// kick finds a vCPU for newly runnable work: an idle one, or else a busy one without a
// time slice armed (it arms one when it sees the run queue is not empty).
//
//go:nosplit
func kick() {
	self := int32(thisCPU().hw.ID)
	for i := int32(0); i < ncpu; i++ {
		if c := cpuAt(i); i != self && c.idle != 0 {
			sendWakeup(i)
			return
		}
	}
	for i := int32(0); i < ncpu; i++ {
		if c := cpuAt(i); i != self && c.sliceEnd == 0 {
			sendWakeup(i)
			return
		}
	}
}

// sendWakeup interrupts vCPU i (an x2APIC fixed IPI: one WRMSR, ~4 us on kvm-pvm).
//
//go:nosplit
func sendWakeup(i int32) {
	info().Stats.IPIsSent++
	wrmsr(msrX2APICICR, cpuAt(i).hw.APICID<<32|1<<14|vectorWakeup)
}

// allIdle reports whether every other vCPU is halted in its idle loop.
//
//go:nosplit
func allIdle() bool {
	self := int32(thisCPU().hw.ID)
	for i := int32(0); i < ncpu; i++ {
		if i != self && cpuAt(i).idle == 0 {
			return false
		}
	}
	return true
}

// wakeExpired ends the timed waits whose deadline has passed.
//
//go:nosplit
func wakeExpired(now uint64) {
	for i := int32(0); i < liveLimit; i++ {
		t := threadAt(i)
		if t.state != threadBlocked || t.deadline == 0 || t.deadline > now {
			continue
		}
		switch t.wait {
		case waitFutex:
			wake(i, -linux.ETIMEDOUT)
		case waitEpoll:
			wake(i, 0)
		default:
			wake(i, 0)
		}
	}
}

// takeHostSignals posts the signals the host sent pith (the monitor interrupts a vCPU
// after setting them) to tier 1, as Linux would to a process, and tells tier 1's NIC
// thread of frames the monitor received for it.
//
//go:nosplit
func takeHostSignals() {
	bi := info()
	for bits := atomic.SwapUint64(&bi.HostSignals, 0); bits != 0; bits &= bits - 1 {
		sig := uint64(1)
		for b := bits; b&1 == 0; b >>= 1 {
			sig++
		}
		sysKill(1, sig)
	}
	if atomic.SwapUint64(&bi.NetRx, 0) != 0 && bi.NetReadyFD != 0 {
		sysSetReady(bi.NetReadyFD-1, linux.EPOLLIN, 1) // the NIC's receive ring has frames
	}
	if atomic.SwapUint64(&bi.HostReady, 0) != 0 && bi.HostReadyFD != 0 {
		sysSetReady(bi.HostReadyFD-1, linux.EPOLLIN, 1) // a program or pipe tier 1 waits for
	}
}

// hostMayWake reports whether the monitor may yet wake the guest: a NIC's frames, or
// something tier 1 asked it to watch (FileNotify). HostReady is set before HostWatches
// drops, so a notification on its way is seen.
//
//go:nosplit
func hostMayWake() bool {
	bi := info()
	return bi.NetReadyFD != 0 || atomic.LoadUint64(&bi.HostWatches) != 0 || atomic.LoadUint64(&bi.HostReady) != 0
}

// nextDeadline is the earliest timed wait, 0 if none.
//
//go:nosplit
func nextDeadline() uint64 {
	var d uint64
	for i := int32(0); i < liveLimit; i++ {
		t := threadAt(i)
		if t.state == threadBlocked && t.deadline != 0 && (d == 0 || t.deadline < d) {
			d = t.deadline
		}
	}
	return d
}

// schedule picks the thread this vCPU returns to and arms its timer for the next event:
// the earliest timed wait, the end of the time slice when others are waiting to run, or a
// console flush. With nothing runnable it idles the vCPU; with nothing runnable anywhere
// and nothing that could ever wake the guest it tells the monitor.
//
//go:nosplit
func schedule(yield bool) {
	if atomic.LoadUint32(&forking) != 0 {
		park()
	}
	c := thisCPU()
	c.wakePending = 0
	now := rdtsc()
	takeHostSignals()
	wakeExpired(now)
	reapLimbo()
	prev := c.cur
	if prev >= 0 {
		t := threadAt(prev)
		if t.state == threadRunnable {
			if runqHead == runqTail {
				c.sliceEnd = 0
				arm(now)
				return
			}
			if c.sliceEnd == 0 { // work arrived from elsewhere while it ran alone
				c.sliceEnd = c.runSince + wakeupTicks
			}
			if !yield && now < c.sliceEnd {
				arm(now)
				return
			}
			enqueue(prev)
		}
		t.onCPU = -1
		chargeRun(c, t, now)
	}
	idled := false
	for {
		next := dequeue()
		if next >= 0 {
			setCurrent(next)
			break
		}
		idled = true
		c.cur = -1
		if !arm(now) && !consoleDirty() && allIdle() && !hostMayWake() {
			outl(abi.PortIdle, 0)
		}
		consoleFlush()
		c.idle = 1
		c.hw.IdleUntil = 0
		if c.armed > now {
			c.hw.IdleUntil = c.armed
		}
		c.hw.IdleSince = now
		unlockTier0()
		idle()
		lockTier0()
		c.hw.IdleSince = 0
		c.idle = 0
		if atomic.LoadUint32(&forking) != 0 {
			park()
		}
		syncTLB(c)
		if c.wakePending != 0 {
			info().Stats.Interrupts++
		}
		c.wakePending = 0
		now = rdtsc()
		takeHostSignals()
		wakeExpired(now)
	}
	if c.cur != prev {
		info().Stats.Switches++
	}
	if c.cur != prev || idled {
		c.runSince = now
	}
	c.acctSince = now
	c.sliceEnd = now + sliceTicks
	arm(now)
}

// chargeRun adds to t's CPU time its run on vCPU c that ends now, as c lets it go; an
// exited thread's goes to exitedTicks.
//
//go:nosplit
func chargeRun(c *cpu, t *thread, now uint64) {
	t.cpuTicks += unchargedRun(c, now)
	if t.state == threadFree {
		exitedTicks += t.cpuTicks
		t.cpuTicks = 0
	}
}

// unchargedRun is what vCPU c's current thread has run by now and is not yet in its
// cpuTicks; nothing for a vCPU that has not scheduled yet (acctSince 0).
//
//go:nosplit
func unchargedRun(c *cpu, now uint64) uint64 {
	if c.acctSince == 0 || now <= c.acctSince {
		return 0
	}
	return now - c.acctSince
}

// startCPUTime zeroes the CPU times as the app starts: what tier 1 ran to load it is not
// the app's, as a native exec's work is next to nothing of a process's time.
//
//go:nosplit
func startCPUTime() {
	now := rdtsc()
	exitedTicks = 0
	for i := int32(0); i < liveLimit; i++ {
		threadAt(i).cpuTicks = 0
	}
	for i := int32(0); i < ncpu; i++ {
		if c := cpuAt(i); c.acctSince != 0 {
			c.acctSince = now
		}
	}
}

// threadTicks is the TSC ticks the current thread has run.
//
//go:nosplit
func threadTicks() uint64 {
	return current().cpuTicks + unchargedRun(thisCPU(), rdtsc())
}

// processTicks is the TSC ticks every thread of the guest has run, the exited included.
//
//go:nosplit
func processTicks() uint64 {
	now := rdtsc()
	total := exitedTicks
	for i := int32(0); i < liveLimit; i++ {
		total += threadAt(i).cpuTicks // an exited thread's until its switch out moves them
	}
	for i := int32(0); i < ncpu; i++ {
		if c := cpuAt(i); c.cur >= 0 {
			total += unchargedRun(c, now)
		}
	}
	return total
}

// arm programs this vCPU's TSC-deadline timer for its next event. It reports whether
// there is one. The MSR (a ~4 us trap on kvm-pvm) is written only to bring the deadline
// earlier: a later deadline, or none, leaves the armed one, whose interrupt, if it comes
// first, finds nothing due and arms the next (one that has passed has fired, perhaps
// while the vCPU idled, and is armed again). The deadline that matters moves back and
// forth as threads block and wake (a wait's end, then a time slice's): writing each
// change cost 69 writes in a warm Go hello.
//
//go:nosplit
func arm(now uint64) bool {
	c := thisCPU()
	d := nextDeadline()
	if d != 0 {
		d = saturatingAdd(d, slackTicks) // waits that expire before then end at the next tier-0 entry
		if ncpu == 1 && c.cur >= 0 && d < c.runSince+wakeupTicks {
			// The wait's thread could not have the vCPU before. (With more, another
			// vCPU, idle or further into its thread's time, may take it at once.)
			d = c.runSince + wakeupTicks
		}
	}
	if runqHead != runqTail && c.sliceEnd != 0 && (d == 0 || c.sliceEnd < d) {
		d = c.sliceEnd
	}
	if f := consoleDeadline; f != 0 && (d == 0 || f < d) {
		d = f
	}
	if d != 0 && (c.armed <= now || d < c.armed) { // an armed deadline passed has fired
		if d <= now {
			d = now + 1
		}
		wrmsr(msrTSCDeadline, d)
		c.armed = d
	}
	return d != 0
}

// timerInterrupt handles the TSC-deadline interrupt taken while a thread ran.
//
//go:nosplit
func timerInterrupt() {
	wrmsr(msrX2APICEOI, 0)
	thisCPU().armed = 0
	if consoleDeadline != 0 && rdtsc() >= consoleDeadline {
		consoleFlush()
	}
	schedule(false)
}
