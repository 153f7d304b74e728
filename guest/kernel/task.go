package kernel

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/pithvm/pith/abi"
)

// Task is one app thread.
type Task struct {
	proc *Process
	tid  int32

	// page holds the AppContext tier 0 reads and writes, then (at 4 KiB) the app's XSAVE
	// area: memory outside the Go heap, where nothing moves it.
	page []byte
	ctx  *abi.AppContext

	sigmask uint64
	pending uint64
	// suspended: rt_sigsuspend replaced sigmask for its wait; the handler it ends with
	// runs with that mask and returns to the task's own, savedMask (Linux's
	// set_restore_sigmask).
	suspended bool
	savedMask uint64
	altSP     uint64
	altSize   uint64
	clearTID  uint64 // CLONE_CHILD_CLEARTID / set_tid_address
	exited    bool

	frameState []byte // rt_sigreturn's copy of the app's vector state, checked before use

	// A call that waits in tier 1 ends when a signal the task takes is made pending
	// (interrupt), with errRestart: then the call is made again after the handler where
	// SA_RESTART says so (or where no handler runs), and answers EINTR otherwise.
	signalled atomic.Bool               // a signal the task takes is pending
	wake      chan struct{}             // a token when signalled is set, for waitChan and sleep
	waitCond  atomic.Pointer[sync.Cond] // what waitOn waits on, woken by interrupt
	restartNr uint64                    // the call that ended with errRestart, plus one
}

const (
	xsaveOffset  = 4096
	xsaveSize    = 4096
	taskPageSize = xsaveOffset + xsaveSize
)

func newTask(p *Process) (*Task, error) {
	page, err := syscall.Mmap(-1, 0, taskPageSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("allocating a task: %v", err)
	}
	t := &Task{proc: p, page: page, ctx: (*abi.AppContext)(unsafe.Pointer(&page[0])), wake: make(chan struct{}, 1)}
	t.ctx.XSave = uint64(uintptr(unsafe.Pointer(&page[xsaveOffset])))
	return t, nil
}

// xsave is the app's vector state, in the XSAVE layout.
func (t *Task) xsave() []byte { return t.page[xsaveOffset:] }

// initVectorState gives the app the x87 and SSE defaults a new Linux process has.
func (t *Task) initVectorState() {
	x := t.xsave()
	*(*uint16)(unsafe.Pointer(&x[0])) = 0x37f   // FCW
	*(*uint32)(unsafe.Pointer(&x[24])) = 0x1f80 // MXCSR
}

// cleanVectorState writes the app's vector state as it is after a Go function call,
// which is where a fast call (abi.AppFastCall) leaves the app without saving it: no
// register holds anything (Go wants X15 zero), the control words are the defaults. A
// signal frame or a clone then carries that rather than a stale state.
func (t *Task) cleanVectorState() {
	x := t.xsave()
	clear(x[:576]) // the legacy area and the XSAVE header: every component initial
	t.initVectorState()
}

// start runs the task on a new OS thread and returns the thread's ID; first, on that
// thread, it calls setup with the ID (for CLONE_*SETTID), before any app code runs.
func (t *Task) start(wg *sync.WaitGroup, setup func(tid int32)) int32 {
	ready := make(chan int32)
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread()      // never unlocked: the OS thread ends with the task
		debug.SetPanicOnFault(true) // a fault on an app address is the app's (catchAppFault)
		t.tid = int32(syscall.Gettid())
		t.proc.addTask(t)
		if setup != nil {
			setup(t.tid)
		}
		ready <- t.tid
		t.loop()
		t.proc.removeTask(t)
	}()
	return <-ready
}

// loop runs app code until the thread exits, serving what it asks for.
func (t *Task) loop() {
	for !t.exited {
		t.deliverSignals()
		if t.exited {
			return
		}
		if t.proc.forking.Load() { // in a fork's child, this thread is gone once it is done
			forkMu.Lock()
			forkMu.Unlock()
			continue
		}
		// Back to a rewritten site's SYSCALL return, tier 1 enters the app without a
		// trap (guest/tier0/fastswitch.go): nothing but its general registers is live.
		t.ctx.Fast = 0
		if atSyscallReturn(t.ctx.Regs.RIP) {
			t.ctx.Fast = 1
		}
		_, _, e := syscall.Syscall(abi.SysPithRunApp, uintptr(unsafe.Pointer(t.ctx)), 0, 0)
		if e != 0 {
			fmt.Fprintf(os.Stderr, "pith: tier 0 refused to run the app: %v\n", e)
			t.proc.exit(125)
		}
		switch t.ctx.Reason {
		case abi.AppFastCall:
			t.cleanVectorState()
			t.syscall()
		case abi.AppSyscall:
			t.syscall()
		case abi.AppException:
			t.exception()
		case abi.AppKicked:
		}
	}
}

// errRestart ends a call that a signal interrupted (Linux's ERESTARTSYS); the app never
// sees it (syscall, deliverSignals).
const errRestart = 512

// interrupt ends a wait of t's in tier 1, if any, so that it takes a signal just made
// pending. The condition's lock is taken on a goroutine of its own: the caller may hold
// it (a write that raises SIGPIPE).
func (t *Task) interrupt() {
	t.signalled.Store(true)
	select {
	case t.wake <- struct{}{}:
	default:
	}
	if c := t.waitCond.Load(); c != nil {
		go func() {
			c.L.Lock()
			c.Broadcast()
			c.L.Unlock()
		}()
	}
}

// beginCall forgets the signals already delivered before the task makes a call: only
// one still pending and not blocked interrupts it.
func (t *Task) beginCall() {
	t.signalled.Store(false)
	select {
	case <-t.wake:
	default:
	}
	p := t.proc
	p.mu.Lock()
	takes := t.pending&^t.sigmask != 0
	p.mu.Unlock()
	if takes {
		t.interrupt()
	}
}

// waitOn waits on c, whose lock the caller holds, as c.Wait does, unless a signal the
// task takes is pending: then it answers false at once and the call ends with
// errRestart. A nil task (tier 1's own goroutines) always waits.
func (t *Task) waitOn(c *sync.Cond) bool {
	if t == nil {
		c.Wait()
		return true
	}
	t.waitCond.Store(c) // before looking at signalled: interrupt sets it, then looks here
	defer t.waitCond.Store(nil)
	if t.signalled.Load() {
		return false
	}
	c.Wait()
	return true
}

// What waitChan saw.
const (
	waitWoken     = iota // a token on the channel, or nothing: look again
	waitSignalled        // a signal the task takes is pending: end the call
	waitExpired          // the timeout ran out
)

// waitChan waits for a token on (or the close of) ch or also, or the end of expired
// (nil: none), unless a signal the task takes is pending.
func (t *Task) waitChan(ch, also <-chan struct{}, expired <-chan time.Time) int {
	if t.signalled.Load() {
		return waitSignalled
	}
	select {
	case <-ch:
	case <-also:
	case <-expired:
		return waitExpired
	case <-t.wake:
		if t.signalled.Load() {
			return waitSignalled
		}
	}
	return waitWoken
}

// sleep waits for d, answering false early when a signal the task takes is pending.
func (t *Task) sleep(d time.Duration) bool {
	if t == nil {
		time.Sleep(d)
		return true
	}
	if t.signalled.Load() {
		return false
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-t.wake:
		return !t.signalled.Load()
	}
}
