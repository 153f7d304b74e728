package kernel

import (
	"syscall"
	"testing"
	"time"

	"github.com/pithvm/pith/guest/linux"
)

const sigUSR1 = 10

// readLater reads one byte of p as t would in a read call, answering on the channel.
func readLater(t *Task, p *pipe) chan int64 {
	done := make(chan int64, 1)
	go func() {
		t.beginCall()
		done <- p.read(t, make([]byte, 1), false)
	}()
	return done
}

func withHandler(t *Task, sig uint64) {
	t.proc.sigaction[sig-1] = sigaction{handler: 0x1000, flags: linux.SA_RESTART}
}

func TestASignalEndsAWaitInTier1(t *testing.T) {
	task := newTestTask()
	withHandler(task, sigUSR1)
	p := newPipe()
	done := readLater(task, p)
	time.Sleep(20 * time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("read of an empty pipe returned %d before any signal", r)
	default:
	}
	task.proc.post(task, sigUSR1)
	select {
	case r := <-done:
		if r != -errRestart {
			t.Fatalf("read returned %d, want errRestart", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a signal did not end the read")
	}
}

func TestABlockedSignalLeavesTheWait(t *testing.T) {
	task := newTestTask()
	withHandler(task, sigUSR1)
	task.sigmask = sigbit(sigUSR1)
	p := newPipe()
	done := readLater(task, p)
	time.Sleep(20 * time.Millisecond)
	task.proc.post(task, sigUSR1)
	time.Sleep(20 * time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("read returned %d for a signal the task blocks", r)
	default:
	}
	p.write(nil, []byte("x"), false)
	if r := <-done; r != 1 {
		t.Fatalf("read returned %d, want the byte written", r)
	}
}

func TestASignalPendingBeforeTheCallEndsItsWait(t *testing.T) {
	task := newTestTask()
	withHandler(task, sigUSR1)
	task.pending = sigbit(sigUSR1)
	select {
	case r := <-readLater(task, newPipe()):
		if r != -errRestart {
			t.Fatalf("read returned %d, want errRestart", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a pending signal did not end the read")
	}
	// One delivered before the next call does not end that call's wait.
	task.pending = 0
	done := readLater(task, newPipe())
	time.Sleep(20 * time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("read returned %d with no signal pending", r)
	default:
	}
}

func TestAnInterruptedCallIsMadeAgainWhereNoHandlerRuns(t *testing.T) {
	task := newTestTask()
	r := &task.ctx.Regs
	r.RIP, r.RAX = 0x401002, 1
	task.restartNr = syscall.SYS_READ + 1
	task.deliverSignals()
	if r.RIP != 0x401000 || r.RAX != syscall.SYS_READ || task.restartNr != 0 {
		t.Fatalf("RIP %#x RAX %d restartNr %d, want the SYSCALL again (0x401000, read)", r.RIP, r.RAX, task.restartNr)
	}
}

// kill of an ID that is no process pith knows (a child already waited for) answers ESRCH
// and signals no one; the caller's own ID reaches it.
func TestKillOfAnUnknownProcess(t *testing.T) {
	task := newTestTask()
	task.proc.tasks[task.tid] = task
	if r := call(task, syscall.SYS_KILL, 100074, uint64(syscall.SIGTERM)); r != -linux.ESRCH {
		t.Errorf("kill of an unknown process: %d, want ESRCH", r)
	}
	if task.pending != 0 {
		t.Fatalf("kill of an unknown process made %#x pending on the caller", task.pending)
	}
	if r := call(task, syscall.SYS_KILL, uint64(selfPID.Load()), uint64(syscall.SIGUSR1)); r != 0 || task.pending != sigbit(uint64(syscall.SIGUSR1)) {
		t.Errorf("kill of itself: %d, pending %#x", r, task.pending)
	}
}
