package kernel

import (
	"sync"
	"time"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
)

// The process's real-time interval timer (ITIMER_REAL): setitimer, getitimer and alarm.
// It sends SIGALRM to the process when it expires, then again every interval, as
// Linux's does; a fork's child starts with none (Process.forked), as on Linux.
// ITIMER_VIRTUAL and ITIMER_PROF, which count CPU time, are not kept. POSIX timers
// (timer_create, posixtimer.go) are the same timer with a signal of their choosing.

const (
	itimerReal    = 0
	itimerVirtual = 1
	itimerProf    = 2
)

// realTimer is a timer on the real-time clock that sends a signal when it expires
// (fire), then every interval: ITIMER_REAL, or a POSIX timer.
type realTimer struct {
	mu       sync.Mutex
	timer    *time.Timer
	deadline time.Time // when it next expires; zero: disarmed
	interval time.Duration
	armed    uint64 // counts arms: a firing of an earlier one does nothing
	fire     func() // sends the signal; nil: SIGALRM to the process (ITIMER_REAL)
	clock    int32  // a POSIX timer's clock, for TIMER_ABSTIME
	deleted  bool   // a POSIX timer deleted: set arms it no more
}

// minInterval bounds how often a periodic timer fires: Linux re-arms a POSIX timer only
// as its signal is taken, and a timer of a nanosecond must not keep a tier-1 thread
// posting signals without pause.
const minInterval = 100 * time.Microsecond

// itimerval is Linux's struct itimerval: the interval, then the value, each a timeval.
type itimerval struct {
	intervalSec, intervalUsec int64
	valueSec, valueUsec       int64
}

func durationOf(sec, usec int64) time.Duration {
	return time.Duration(sec)*time.Second + time.Duration(usec)*time.Microsecond
}

// timeval splits d into seconds and microseconds, a part of a microsecond counting as one.
func timeval(d time.Duration) (sec, usec int64) {
	us := (d + time.Microsecond - 1) / time.Microsecond
	return int64(us / 1e6), int64(us % 1e6)
}

// itimervalOf is a timer's value as getitimer gives it.
func itimervalOf(left, interval time.Duration) itimerval {
	var v itimerval
	v.intervalSec, v.intervalUsec = timeval(interval)
	v.valueSec, v.valueUsec = timeval(left)
	return v
}

// get is the timer's value now: the time left and the interval.
func (r *realTimer) get() (left, interval time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.left(), r.interval
}

// left is the time until the timer next expires: 0 when disarmed, and at least a
// microsecond when armed, as Linux never reports an armed timer as disarmed. r.mu is held.
func (r *realTimer) left() time.Duration {
	if r.deadline.IsZero() {
		return 0
	}
	return max(time.Until(r.deadline), time.Microsecond)
}

// set arms the timer to expire after value, then every interval (value 0 disarms it),
// and returns what it was before, as get would have.
func (r *realTimer) set(p *Process, value, interval time.Duration) (oldLeft, oldInterval time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	oldLeft, oldInterval = r.left(), r.interval
	r.armed++
	if r.timer != nil {
		r.timer.Stop()
	}
	r.deadline, r.interval = time.Time{}, 0
	if value <= 0 || r.deleted {
		return oldLeft, oldInterval
	}
	r.deadline, r.interval = time.Now().Add(value), interval
	armed := r.armed
	r.timer = time.AfterFunc(value, func() { r.expire(p, armed) })
	return oldLeft, oldInterval
}

// expire sends SIGALRM to the process and rearms the timer for the next interval, unless
// it was set again meanwhile. No fork copies the guest while it runs (forkMu): a copy
// would have the signal, or this goroutine, past the point where the child stops its
// timers.
func (r *realTimer) expire(p *Process, armed uint64) {
	forkMu.RLock()
	defer forkMu.RUnlock()
	r.mu.Lock()
	if r.armed != armed {
		r.mu.Unlock()
		return
	}
	if r.interval > 0 {
		// From the deadline, not from now: a late firing does not push the next.
		r.deadline = r.deadline.Add(max(r.interval, minInterval))
		if now := time.Now(); r.deadline.Before(now) {
			r.deadline = now.Add(r.interval)
		}
		r.timer = time.AfterFunc(time.Until(r.deadline), func() { r.expire(p, armed) })
	} else {
		r.deadline = time.Time{}
	}
	fire := r.fire
	r.mu.Unlock()
	switch {
	case fire != nil:
		fire()
	case p.execHandle.Load() != 0:
		// The app was replaced by a program (execve): its alarm goes on, as on Linux.
		fileRequest(&abi.FileRequest{Op: abi.FileKillChild, Handle: p.execHandle.Load(), Flags: linux.SIGALRM})
	default:
		p.postProcess(linux.SIGALRM)
	}
}

// stop disarms the timer (a fork's child has none); deleting, it is never armed again.
func (r *realTimer) stop(deleting bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deleted = r.deleted || deleting
	r.armed++
	if r.timer != nil {
		r.timer.Stop()
	}
	r.deadline, r.interval = time.Time{}, 0
}

// itimer checks setitimer's and getitimer's which: only ITIMER_REAL is kept.
func itimer(which uint64) int64 {
	switch which {
	case itimerReal:
		return 0
	case itimerVirtual, itimerProf:
		return -linux.ENOSYS
	}
	return -linux.EINVAL
}

func sysGetitimer(t *Task, a [6]uint64) int64 {
	if e := itimer(a[0]); e != 0 {
		return e
	}
	if !putApp(a[1], itimervalOf(t.proc.alarm.get())) {
		return -linux.EFAULT
	}
	return 0
}

func sysSetitimer(t *Task, a [6]uint64) int64 {
	if e := itimer(a[0]); e != 0 {
		return e
	}
	var v itimerval // a null new value disarms, as Linux takes it
	if a[1] != 0 {
		var ok bool
		if v, ok = getApp[itimerval](a[1]); !ok {
			return -linux.EFAULT
		}
	}
	if v.intervalSec < 0 || v.intervalUsec < 0 || v.intervalUsec >= 1e6 || v.valueSec < 0 || v.valueUsec < 0 || v.valueUsec >= 1e6 {
		return -linux.EINVAL
	}
	left, interval := t.proc.alarm.set(t.proc, durationOf(v.valueSec, v.valueUsec), durationOf(v.intervalSec, v.intervalUsec))
	if a[2] != 0 && !putApp(a[2], itimervalOf(left, interval)) {
		return -linux.EFAULT // as Linux: the timer is set all the same
	}
	return 0
}

// sysAlarm sets the timer to expire once after a[0] seconds (0 disarms it) and returns
// the seconds the previous one had left, rounded to the nearest but never 0 for one
// still armed, as Linux's alarm_setitimer.
func sysAlarm(t *Task, a [6]uint64) int64 {
	left, _ := t.proc.alarm.set(t.proc, time.Duration(uint32(a[0]))*time.Second, 0)
	sec, usec := timeval(left)
	if usec >= 500000 || sec == 0 && usec > 0 {
		sec++
	}
	return sec
}
