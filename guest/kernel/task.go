package kernel

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
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

	sigmask  uint64
	pending  uint64
	altSP    uint64
	altSize  uint64
	clearTID uint64 // CLONE_CHILD_CLEARTID / set_tid_address
	exited   bool

	frameState []byte // rt_sigreturn's copy of the app's vector state, checked before use
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
	t := &Task{proc: p, page: page, ctx: (*abi.AppContext)(unsafe.Pointer(&page[0]))}
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
		_, _, e := syscall.Syscall(abi.SysPithRunApp, uintptr(unsafe.Pointer(t.ctx)), 0, 0)
		if e != 0 {
			fmt.Fprintf(os.Stderr, "pith: tier 0 refused to run the app: %v\n", e)
			t.proc.exit(125)
		}
		switch t.ctx.Reason {
		case abi.AppSyscall:
			t.syscall()
		case abi.AppException:
			t.exception()
		case abi.AppKicked:
		}
	}
}
