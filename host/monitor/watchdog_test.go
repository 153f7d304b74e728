package monitor

import (
	"testing"
	"time"
)

func TestStallWatch(t *testing.T) {
	const khz = 1_000_000 // 1 GHz: a tick is a nanosecond
	second := uint64(time.Second)
	// watch looks until the watch reports or n looks are taken, as watch does: it
	// returns the vCPU reported and when, counted from the first look's start.
	watch := func(w *stallWatch, n int, recs ...idleRecord) (cpu int, at time.Duration) {
		for range n {
			at += w.next()
			if cpu, _ := w.look(recs); cpu >= 0 {
				return cpu, at
			}
		}
		return -1, at
	}

	// A guest stuck from its start (a timer due at once) is reported just past the grace
	// period after the first look.
	w := &stallWatch{khz: khz}
	stuck := idleRecord{since: second, until: second + 1000}
	if cpu, at := watch(w, 100, stuck); cpu != 0 || at > watchFirst+watchGrace+2*time.Second {
		t.Errorf("a guest stuck from the start: vCPU %d reported at %v", cpu, at)
	}

	// A vCPU halted for a 30 s sleep is reported only once the timer is more than
	// watchGrace overdue, and soon after.
	w = &stallWatch{khz: khz}
	sleeping := idleRecord{since: 5 * second, until: 35 * second}
	cpu, at := watch(w, 100, sleeping)
	if first := watchFirst; cpu != 0 || at-first <= 30*time.Second+watchGrace || at-first > 30*time.Second+watchGrace+2*time.Second {
		t.Errorf("a 30 s sleep: vCPU %d reported %v after the first look, want just past %v", cpu, at-first, 30*time.Second+watchGrace)
	}

	// Halted with no timer: tier 0 reports that itself (PortIdle), or something else
	// (an interrupt from the monitor) wakes it. The looks back off to one a minute.
	w = &stallWatch{khz: khz}
	if cpu, _ := watch(w, 100, idleRecord{since: second}); cpu != -1 {
		t.Errorf("a halt with no timer was reported")
	}
	if w.next() != watchMax {
		t.Errorf("looks at a guest halted with no timer came every %v, want %v", w.next(), watchMax)
	}

	// A guest that has run a long time is looked at once a minute; once stuck, it is
	// reported at most two looks later.
	w = &stallWatch{khz: khz}
	for i := range 20 {
		w.look([]idleRecord{{since: uint64(i+1) * second, until: uint64(i+1)*second + 1000}})
	}
	if w.next() != watchMax {
		t.Errorf("looks at a busy guest came every %v, want %v", w.next(), watchMax)
	}
	if cpu, at := watch(w, 100, stuck); cpu != 0 || at > 2*watchMax {
		t.Errorf("a guest stuck late: vCPU %d reported %v after, want at most %v", cpu, at, 2*watchMax)
	}

	// Any vCPU running, or a record changing, starts the count again: the look after
	// cannot report.
	w = &stallWatch{khz: khz}
	watch(w, 2, stuck, stuck)
	w.look([]idleRecord{stuck, {}})
	if cpu, _ := watch(w, 1, stuck, stuck); cpu != -1 {
		t.Errorf("counted across a running vCPU")
	}
	w.look([]idleRecord{stuck, {since: 3 * second, until: 3*second + 1000}})
	if cpu, _ := watch(w, 1, stuck, stuck); cpu != -1 {
		t.Errorf("counted across a new halt")
	}
	if cpu, _ := watch(w, 100, stuck, stuck); cpu != 0 {
		t.Errorf("two vCPUs stuck were not reported")
	}
}
