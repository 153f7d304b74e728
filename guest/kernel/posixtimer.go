package kernel

import (
	"encoding/binary"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/pithvm/pith/guest/linux"
)

// POSIX timers (timer_create and friends) on the real-time, monotonic and boot-time
// clocks, each a realTimer whose expiry sends the signal its sigevent names to the
// process or to one thread (SIGEV_THREAD_ID), or nothing (SIGEV_NONE). The signal's
// siginfo carries no timer fields (si_value, si_overrun): glibc's SIGEV_THREAD timers,
// which need si_value, do not work, and timer_getoverrun answers 0. Timers on CPU-time
// clocks answer EINVAL (Go's profiler then falls back to setitimer, which answers
// ENOSYS for ITIMER_PROF), and on the alarm and TAI clocks too. A fork's child and a
// program that replaces the app start with none, as on Linux.

const (
	sigevSignal   = 0
	sigevNone     = 1
	sigevThread   = 2
	sigevThreadID = 4

	timerAbstime = 1

	sigeventSize = 64
	maxTimers    = 1024 // timers a process may hold at once; past it, EAGAIN
)

// posixTimers are a process's timers, by ID.
type posixTimers struct {
	mu   sync.Mutex
	byID map[int32]*realTimer
	next int32 // the next ID, as Linux counts them from 0
}

// clockNow reads clock id as the app would (tier 0 serves clock_gettime), or false.
func clockNow(id int32) (time.Duration, bool) {
	var ts syscall.Timespec
	if _, _, e := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, uintptr(id), uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0, false
	}
	return time.Duration(ts.Sec)*time.Second + time.Duration(ts.Nsec), true
}

// timerClock is timer_create's answer for clock id: 0 for the clocks it takes, those that
// run in real time (REALTIME, MONOTONIC, BOOTTIME).
func timerClock(id int32) int64 {
	switch id {
	case 0, 1, 7:
		return 0
	case 4, 5, 6: // MONOTONIC_RAW and the coarse clocks, as Linux
		return -linux.EOPNOTSUPP
	}
	return -linux.EINVAL
}

func sysTimerCreate(t *Task, a [6]uint64) int64 {
	clock := int32(a[0])
	if e := timerClock(clock); e != 0 {
		return e
	}
	notify, signo, tid := int32(sigevSignal), int32(linux.SIGALRM), int32(0) // a null sigevent
	if a[1] != 0 {
		ev, ok := appSlice(a[1], sigeventSize)
		if !ok {
			return -linux.EFAULT
		}
		signo = int32(binary.LittleEndian.Uint32(ev[8:]))
		notify = int32(binary.LittleEndian.Uint32(ev[12:]))
		tid = int32(binary.LittleEndian.Uint32(ev[16:]))
	}
	p := t.proc
	var fire func()
	switch notify {
	case sigevNone:
		fire = func() {}
	case sigevSignal, sigevThread, sigevThreadID:
		// SIGEV_THREAD is the C library's, made of SIGEV_THREAD_ID; the kernel takes it
		// as SIGEV_SIGNAL.
		if signo < 1 || signo > 64 {
			return -linux.EINVAL
		}
		sig := uint64(signo)
		fire = func() { p.postProcess(sig) }
		if notify == sigevThreadID {
			p.mu.Lock()
			_, ours := p.tasks[tid]
			p.mu.Unlock()
			if !ours {
				return -linux.EINVAL
			}
			fire = func() {
				p.mu.Lock()
				target := p.tasks[tid]
				p.mu.Unlock()
				if target != nil {
					p.post(target, sig)
				}
			}
		}
	default:
		return -linux.EINVAL
	}
	if a[2] != 0 && !appRange(a[2], 4) {
		return -linux.EFAULT
	}
	pt := &p.timers
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if len(pt.byID) >= maxTimers {
		return -linux.EAGAIN
	}
	if pt.byID == nil {
		pt.byID = map[int32]*realTimer{}
	}
	id := pt.next
	for pt.byID[id] != nil {
		id++
	}
	pt.next = id + 1
	pt.byID[id] = &realTimer{fire: fire, clock: clock}
	putApp(a[2], id)
	return 0
}

// timer is the process's timer id.
func (pt *posixTimers) timer(id uint64) *realTimer {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.byID[int32(id)]
}

// itimerspec is Linux's struct itimerspec: the interval, then the value, each a timespec.
type itimerspec struct {
	intervalSec, intervalNsec int64
	valueSec, valueNsec       int64
}

func itimerspecOf(left, interval time.Duration) itimerspec {
	return itimerspec{int64(interval / time.Second), int64(interval % time.Second), int64(left / time.Second), int64(left % time.Second)}
}

func sysTimerSettime(t *Task, a [6]uint64) int64 {
	if a[2] == 0 {
		return -linux.EINVAL
	}
	v, ok := getApp[itimerspec](a[2])
	if !ok {
		return -linux.EFAULT
	}
	r := t.proc.timers.timer(a[0])
	if r == nil {
		return -linux.EINVAL
	}
	if v.intervalSec < 0 || v.intervalNsec < 0 || v.intervalNsec >= 1e9 || v.valueSec < 0 || v.valueNsec < 0 || v.valueNsec >= 1e9 {
		return -linux.EINVAL
	}
	value := time.Duration(v.valueSec)*time.Second + time.Duration(v.valueNsec)
	if a[1]&timerAbstime != 0 && value > 0 {
		now, ok := clockNow(r.clock)
		if !ok {
			return -linux.EINVAL
		}
		value = max(value-now, time.Nanosecond) // a time past expires at once
	}
	left, interval := r.set(t.proc, value, time.Duration(v.intervalSec)*time.Second+time.Duration(v.intervalNsec))
	if a[3] != 0 && !putApp(a[3], itimerspecOf(left, interval)) {
		return -linux.EFAULT // as Linux: the timer is set all the same
	}
	return 0
}

func sysTimerGettime(t *Task, a [6]uint64) int64 {
	r := t.proc.timers.timer(a[0])
	if r == nil {
		return -linux.EINVAL
	}
	if !putApp(a[1], itimerspecOf(r.get())) {
		return -linux.EFAULT
	}
	return 0
}

func sysTimerGetoverrun(t *Task, a [6]uint64) int64 {
	if t.proc.timers.timer(a[0]) == nil {
		return -linux.EINVAL
	}
	return 0
}

func sysTimerDelete(t *Task, a [6]uint64) int64 {
	pt := &t.proc.timers
	pt.mu.Lock()
	r := pt.byID[int32(a[0])]
	delete(pt.byID, int32(a[0]))
	pt.mu.Unlock()
	if r == nil {
		return -linux.EINVAL
	}
	r.stop(true)
	return 0
}

// stopAll deletes every timer: a fork's child, and a process replaced by a program,
// have none, and the child numbers its own from 0.
func (pt *posixTimers) stopAll() {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	for id, r := range pt.byID {
		r.stop(true)
		delete(pt.byID, id)
	}
	pt.next = 0
}
