package tier0

import (
	"unsafe"

	"github.com/pithvm/pith/abi"
)

const (
	maxThreads    = 256 // a power of two: indexes are masked, never bounds-checked
	xsaveAreaSize = 4096
	timeSliceNs   = 5_000_000
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

	clearTID uintptr // CLONE_CHILD_CLEARTID / set_tid_address
	sigmask  uint64
	pending  uint64 // signals posted and not yet delivered
	// A synchronous signal from an exception, with its si_code and si_addr.
	faultSig  uint64
	faultCode int64
	faultAddr uint64
	altSP     uint64
	altFlags  uint64
	altSize   uint64
}

var (
	threads  [maxThreads]thread
	xsaveMem [maxThreads*xsaveAreaSize + 64]byte

	cur        int32 // index of the current thread
	liveLimit  int32 // threads[liveLimit:] are all free
	runq       [maxThreads]int32
	runqHead   uint32
	runqTail   uint32
	sliceEnd   uint64 // TSC at which the current thread's time slice ends
	armed      uint64 // TSC deadline currently in the timer; 0 if none
	sliceTicks uint64
)

//go:nosplit
func threadAt(i int32) *thread { return &threads[uint32(i)&(maxThreads-1)] }

//go:nosplit
func current() *thread { return threadAt(cur) }

//go:nosplit
func setCurrent(i int32) {
	cur = i
	curThread = uintptr(unsafe.Pointer(threadAt(i)))
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
	t.state = threadRunnable
	t.wait = waitNone
	t.deadline = 0
	t.regs.RAX = uint64(result)
	enqueue(i)
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
			wake(i, -errETIMEDOUT)
		case waitEpoll:
			wake(i, 0)
		default:
			wake(i, 0)
		}
	}
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

// schedule picks the thread to return to and arms the timer for the next event: the
// earliest timed wait, the end of the time slice when others are waiting to run, or a
// console flush. With nothing runnable it idles the vCPU; with nothing runnable and
// nothing that could ever wake the guest it tells the monitor.
//
//go:nosplit
func schedule(yield bool) {
	timerPending = 0
	now := rdtsc()
	wakeExpired(now)
	prev := cur
	t := current()
	if t.state == threadRunnable {
		if runqHead == runqTail {
			sliceEnd = 0
			arm(now)
			deliverSignal()
			return
		}
		if !yield && sliceEnd != 0 && now < sliceEnd {
			arm(now)
			deliverSignal()
			return
		}
		enqueue(cur)
	}
	for {
		next := dequeue()
		if next >= 0 {
			setCurrent(next)
			break
		}
		if !arm(now) && !consoleDirty() {
			outl(abi.PortIdle, 0)
		}
		consoleFlush()
		idle()
		if timerPending != 0 {
			info().Stats.Interrupts++
		}
		timerPending = 0
		now = rdtsc()
		wakeExpired(now)
	}
	if cur != prev {
		info().Stats.Switches++
	}
	sliceEnd = now + sliceTicks
	arm(now)
	deliverSignal()
}

// arm programs the TSC-deadline timer for the next event, writing the MSR (a trap) only
// when the deadline changes. It reports whether any deadline is armed.
//
//go:nosplit
func arm(now uint64) bool {
	d := nextDeadline()
	if runqHead != runqTail && sliceEnd != 0 && (d == 0 || sliceEnd < d) {
		d = sliceEnd
	}
	if f := consoleDeadline; f != 0 && (d == 0 || f < d) {
		d = f
	}
	if d != armed {
		if d != 0 && d <= now {
			d = now + 1
		}
		wrmsr(msrTSCDeadline, d)
		armed = d
	}
	return d != 0
}

// timerInterrupt handles the TSC-deadline interrupt taken while a thread ran.
//
//go:nosplit
func timerInterrupt() {
	wrmsr(msrX2APICEOI, 0)
	armed = 0
	if consoleDeadline != 0 && rdtsc() >= consoleDeadline {
		consoleFlush()
	}
	schedule(false)
}
