package monitor

import (
	"testing"
	"time"
)

func TestStallWatch(t *testing.T) {
	const khz = 1_000_000 // 1 GHz: a tick is a nanosecond
	second := uint64(time.Second)
	looks := func(w *stallWatch, n int, recs ...idleRecord) (int, time.Duration) {
		cpu, late := -1, time.Duration(0)
		for range n {
			cpu, late = w.look(recs)
		}
		return cpu, late
	}
	// A vCPU halted for a 30 s sleep is reported only once the timer is more than
	// watchGrace overdue.
	w := &stallWatch{khz: khz}
	sleeping := idleRecord{since: 5 * second, until: 35 * second}
	if cpu, _ := looks(w, 1+int((30*time.Second+watchGrace)/watchInterval), sleeping); cpu != -1 {
		t.Fatalf("reported at the grace period's end")
	}
	if cpu, late := w.look([]idleRecord{sleeping}); cpu != 0 || late <= watchGrace {
		t.Fatalf("not reported past the grace period: cpu %d, late %v", cpu, late)
	}
	// Halted with no timer: tier 0 reports that itself (PortIdle), or something else
	// (an interrupt from the monitor) wakes it.
	w = &stallWatch{khz: khz}
	if cpu, _ := looks(w, 100, idleRecord{since: second}); cpu != -1 {
		t.Errorf("a halt with no timer was reported")
	}
	// Any vCPU running, or a record changing, starts the count again.
	w = &stallWatch{khz: khz}
	stuck := idleRecord{since: second, until: 2 * second}
	short := 1 + int(watchGrace/watchInterval) // halted for watchGrace: 1 s overdue less
	looks(w, short, stuck, stuck)
	w.look([]idleRecord{stuck, {}})
	if cpu, _ := looks(w, short, stuck, stuck); cpu != -1 {
		t.Errorf("counted across a running vCPU")
	}
	looks(w, short, stuck, stuck)
	w.look([]idleRecord{stuck, {since: 3 * second, until: 4 * second}})
	if cpu, _ := looks(w, short, stuck, stuck); cpu != -1 {
		t.Errorf("counted across a new halt")
	}
	if cpu, _ := looks(w, short, stuck, stuck); cpu != 0 {
		t.Errorf("two vCPUs stuck for %d looks were not reported", 2*short)
	}
}
