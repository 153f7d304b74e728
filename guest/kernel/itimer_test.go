package kernel

import (
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/guest/linux"
)

// alarm answers the previous alarm's seconds left, rounded to the nearest and never 0
// for one still armed; an expired alarm makes SIGALRM pending for the process, once.
func TestAlarm(t *testing.T) {
	task := newTestTask()
	task.proc.tasks[task.tid] = task
	pending := func() uint64 {
		task.proc.mu.Lock()
		defer task.proc.mu.Unlock()
		return task.pending
	}
	if r := call(task, unix.SYS_ALARM, 5); r != 0 {
		t.Errorf("first alarm: %d, want 0", r)
	}
	if r := call(task, unix.SYS_ALARM, 0); r != 5 {
		t.Errorf("alarm(0) after alarm(5): %d, want 5", r)
	}
	task.proc.alarm.set(task.proc, 300*time.Millisecond, 0)
	if r := call(task, unix.SYS_ALARM, 0); r != 1 {
		t.Errorf("alarm(0) with 0.3 s left: %d, want 1", r)
	}
	if got := pending(); got != 0 {
		t.Fatalf("signals pending before any alarm expired: %#x", got)
	}
	call(task, unix.SYS_ALARM, 1)
	deadline := time.Now().Add(10 * time.Second)
	for pending() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := pending(); got != sigbit(linux.SIGALRM) {
		t.Fatalf("pending after the alarm: %#x, want SIGALRM's bit", got)
	}
	if r := call(task, unix.SYS_ALARM, 0); r != 0 {
		t.Errorf("alarm(0) after the alarm expired: %d, want 0", r)
	}
}

// A timer with an interval goes on from its deadlines; one set again or stopped sends
// nothing more.
func TestIntervalTimer(t *testing.T) {
	var r realTimer
	p := &Process{tasks: map[int32]*Task{}}
	r.set(p, 20*time.Millisecond, 30*time.Millisecond)
	time.Sleep(35 * time.Millisecond)
	left, interval := r.get()
	if interval != 30*time.Millisecond || left <= 0 || left > 30*time.Millisecond {
		t.Errorf("after the first expiry: %v left, interval %v; want up to 30 ms, 30 ms", left, interval)
	}
	r.stop(false)
	if left, interval := r.get(); left != 0 || interval != 0 {
		t.Errorf("stopped: %v left, interval %v", left, interval)
	}
	if sec, usec := timeval(1500*time.Millisecond + time.Nanosecond); sec != 1 || usec != 500001 {
		t.Errorf("timeval(1.500000001 s) = %d s %d us, want a part of a microsecond counted", sec, usec)
	}
}

// POSIX timers are numbered from 0 per process; CPU-time clocks and unknown timers
// answer EINVAL, the coarse clocks EOPNOTSUPP; SIGEV_THREAD (the C library's) is taken
// as SIGEV_SIGNAL, as by Linux.
func TestPosixTimerIDs(t *testing.T) {
	task := newTestTask()
	task.proc.tasks[task.tid] = task
	id := mem(4)
	for want := int32(0); want < 2; want++ {
		if r := call(task, unix.SYS_TIMER_CREATE, unix.CLOCK_MONOTONIC, 0, addrOf(id)); r != 0 || int32(binary.LittleEndian.Uint32(id)) != want {
			t.Fatalf("timer_create: %d, id %d; want 0, %d", r, binary.LittleEndian.Uint32(id), want)
		}
	}
	if r := call(task, unix.SYS_TIMER_CREATE, unix.CLOCK_THREAD_CPUTIME_ID, 0, addrOf(id)); r != -linux.EINVAL {
		t.Errorf("a CPU-time clock: %d, want EINVAL", r)
	}
	if r := call(task, unix.SYS_TIMER_CREATE, unix.CLOCK_MONOTONIC_COARSE, 0, addrOf(id)); r != -linux.EOPNOTSUPP {
		t.Errorf("a coarse clock: %d, want EOPNOTSUPP", r)
	}
	ev := mem(sigeventSize)
	binary.LittleEndian.PutUint32(ev[8:], 10)
	binary.LittleEndian.PutUint32(ev[12:], 2) // SIGEV_THREAD
	if r := call(task, unix.SYS_TIMER_CREATE, unix.CLOCK_MONOTONIC, addrOf(ev), addrOf(id)); r != 0 || binary.LittleEndian.Uint32(id) != 2 {
		t.Errorf("SIGEV_THREAD: %d, id %d; want 0, 2", r, binary.LittleEndian.Uint32(id))
	}
	binary.LittleEndian.PutUint32(ev[12:], sigevThreadID)
	binary.LittleEndian.PutUint32(ev[16:], 999)
	if r := call(task, unix.SYS_TIMER_CREATE, unix.CLOCK_MONOTONIC, addrOf(ev), addrOf(id)); r != -linux.EINVAL {
		t.Errorf("SIGEV_THREAD_ID of another process's thread: %d, want EINVAL", r)
	}
	if r := call(task, unix.SYS_TIMER_DELETE, 1); r != 0 {
		t.Errorf("timer_delete(1): %d", r)
	}
	if r := call(task, unix.SYS_TIMER_DELETE, 1); r != -linux.EINVAL {
		t.Errorf("timer_delete(1) again: %d, want EINVAL", r)
	}
	if r := call(task, unix.SYS_TIMER_GETOVERRUN, 7); r != -linux.EINVAL {
		t.Errorf("timer_getoverrun of no timer: %d, want EINVAL", r)
	}
}
