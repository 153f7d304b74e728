package monitor

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pithvm/pith/abi"
)

// The watchdog reports a guest that can never wake: every vCPU halted, waiting for a
// timer interrupt that is long overdue. Tier 0 reports the other such guest itself (every
// thread blocked and no timer armed: PortIdle). A host whose KVM drops the guest's
// TSC-deadline writes makes this one; pith refuses the hosts it knows to do that
// (hostCPU.unmet), and this catches the rest instead of hanging.
const (
	// watchFirst is how long after the start it first looks; each look after that comes
	// twice as long after the one before, up to watchMax. Each look wakes an idle
	// monitor process (at one a second it was one of an idle unikernel's few host
	// wake-ups; at one every 5 s still the only periodic one: docs/lifecycle.md, "The
	// idle cost"), so a long-lived guest is looked at once a minute. Once a look finds
	// the vCPUs in the halts the one before found, the next comes as soon as their
	// timer could be overdue past the grace period: a guest stuck from its start is
	// reported about watchFirst+watchGrace after it, one stuck later at most 2*watchMax
	// after.
	watchFirst = 5 * time.Second
	watchMax   = time.Minute
	// watchGrace is how late a timer may be before the guest counts as stuck: a loaded
	// host (a nested guest under emulation, say) delays a wake-up by far less.
	watchGrace = 10 * time.Second
)

// idleRecord is one vCPU's halt as tier 0 recorded it (abi.CPU.IdleSince, IdleUntil).
type idleRecord struct{ since, until uint64 }

// stallWatch follows the vCPUs' idle records from one look to the next. The time halted
// is the sum of the intervals between the looks that found the same records, not the
// clock's: a pith process that was stopped (SIGSTOP, a suspended laptop) takes one look
// on resuming, not a backlog, so its guest is never blamed for the pause.
type stallWatch struct {
	khz      uint64 // TSC ticks per millisecond
	last     []idleRecord
	halted   time.Duration // how long the looks have found every vCPU in the halts of last
	interval time.Duration // from this look to the next; zero before the first
}

// next is how long to wait for the next look.
func (w *stallWatch) next() time.Duration {
	if w.interval == 0 {
		return watchFirst
	}
	return w.interval
}

// look takes one look at the records; it returns the vCPU whose timer is overdue past
// the grace period, with how overdue, or -1 while the guest may still wake. It sets
// the interval to the next look.
func (w *stallWatch) look(now []idleRecord) (int, time.Duration) {
	elapsed := w.next()
	w.interval = min(2*elapsed, watchMax)
	same := len(now) == len(w.last)
	for i, r := range now {
		if r.since == 0 {
			w.last, w.halted = nil, 0 // a vCPU runs
			return -1, 0
		}
		if same && r != w.last[i] {
			same = false
		}
	}
	if same {
		w.halted += elapsed
	} else {
		w.last, w.halted = append(w.last[:0:0], now...), 0
	}
	worst, late := -1, time.Duration(0)
	for i, r := range now {
		if r.until <= r.since || w.khz == 0 {
			continue
		}
		wait := time.Duration(float64(r.until-r.since) / float64(w.khz) * float64(time.Millisecond))
		over := w.halted - wait
		if over > watchGrace && over > late {
			worst, late = i, over
		}
		if same {
			// Still in the same halt: look again just after this timer would be
			// overdue past the grace period.
			w.interval = min(w.interval, max(watchGrace-over+time.Second, time.Second))
		}
	}
	return worst, late
}

// watch runs the watchdog until the guest stops; a stuck guest is stopped and reported.
func (m *machine) watch() {
	w := stallWatch{khz: m.khz}
	blocks := make([]*abi.CPU, len(m.cpus))
	for i := range blocks {
		c, err := m.cpuRecord(i)
		if err != nil {
			return
		}
		blocks[i] = c
	}
	t := time.NewTimer(w.next())
	defer t.Stop()
	now := make([]idleRecord, len(blocks))
	for {
		select {
		case <-m.stopping:
			return
		case <-t.C:
		}
		for i, b := range blocks {
			now[i] = idleRecord{atomic.LoadUint64(&b.IdleSince), atomic.LoadUint64(&b.IdleUntil)}
		}
		if cpu, late := w.look(now); cpu >= 0 {
			msg := fmt.Sprintf("every vCPU halted and vCPU %d's timer interrupt is %v overdue: this host's KVM did not deliver the guest's TSC-deadline timer (pith doctor shows what it checked)", cpu, late.Round(time.Second))
			m.stalled.Store(&msg)
			m.stopAll()
			return
		}
		t.Reset(w.next())
	}
}
