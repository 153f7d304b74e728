package tier0

import "math/bits"

const (
	msrAPICBase     = 0x1b
	msrTSCDeadline  = 0x6e0
	msrX2APICEOI    = 0x80b
	msrX2APICSVR    = 0x80f
	msrX2APICLVTTmr = 0x832
	msrX2APICICR    = 0x830
	apicBaseValue   = 0xfee00000 | 1<<8 | 1<<10 | 1<<11 // BSP, x2APIC, enabled
	lvtTSCDeadline  = 2 << 17
)

var (
	bootTSC  uint64
	nsMult   uint64
	tscMult  uint64
	wallBase int64
)

//go:nosplit
func initTime() {
	bi := info()
	bootTSC = rdtsc()
	nsMult = bi.NsMult
	tscMult = bi.TSCMult
	wallBase = int64(bi.WallNanos)
	sliceTicks = nsToTicks(timeSliceNs)
	slackTicks = nsToTicks(timerSlackNs)
	wakeupTicks = nsToTicks(wakeupGranularityNs)
}

// initTimer puts this vCPU's local APIC in x2APIC mode with a TSC-deadline timer.
//
//go:nosplit
func initTimer() {
	apicBase := uint64(apicBaseValue)
	if thisCPU().hw.ID != 0 {
		apicBase &^= 1 << 8 // only vCPU 0 is the bootstrap processor
	}
	wrmsr(msrAPICBase, apicBase)
	wrmsr(msrX2APICSVR, 0x100|vectorSpurious)
	wrmsr(msrX2APICLVTTmr, lvtTSCDeadline|vectorTimer)
}

//go:nosplit
func ticksToNs(t uint64) uint64 {
	hi, lo := bits.Mul64(t, nsMult)
	return hi<<32 | lo>>32
}

//go:nosplit
func nsToTicks(ns uint64) uint64 {
	hi, lo := bits.Mul64(ns, tscMult)
	if hi >= 1<<32 {
		return ^uint64(0) // centuries: as good as never
	}
	return hi<<32 | lo>>32
}

// monotonic is CLOCK_MONOTONIC in nanoseconds since boot. A TSC behind the boot's (a
// fork's copy whose TSC KVM did not take: host/monitor/fork.go) reads as the boot
// itself, not as a difference wrapped to centuries ahead, whose deadlines would never
// come.
//
//go:nosplit
func monotonic() int64 {
	t := rdtsc()
	if t < bootTSC {
		return 0
	}
	return int64(ticksToNs(t - bootTSC))
}

// deadlineAfter converts a relative timeout in nanoseconds into a TSC deadline.
//
//go:nosplit
func deadlineAfter(ns int64) uint64 {
	now := rdtsc()
	if ns <= 0 {
		return now
	}
	return saturatingAdd(now, nsToTicks(uint64(ns)))
}

// saturatingAdd is a + b, or the largest deadline if that overflows: a timeout of
// "forever" (sleep infinity passes the largest time_t) must not wrap to the past.
//
//go:nosplit
func saturatingAdd(a, b uint64) uint64 {
	if a+b < a {
		return ^uint64(0)
	}
	return a + b
}

// deadlineAt converts an absolute CLOCK_MONOTONIC time in nanoseconds into a TSC deadline.
//
//go:nosplit
func deadlineAt(ns int64) uint64 {
	if ns <= 0 {
		return bootTSC
	}
	return saturatingAdd(bootTSC, nsToTicks(uint64(ns)))
}

// timespec mirrors struct timespec (include/uapi/linux/time_types.h).
type timespec struct {
	sec  int64
	nsec int64
}

//go:nosplit
func (ts *timespec) nanos() int64 {
	const maxSec = (1<<63 - 1 - 999_999_999) / 1_000_000_000
	if ts.sec > maxSec {
		return 1<<63 - 1
	}
	return ts.sec*1_000_000_000 + ts.nsec
}

//go:nosplit
func setTimespec(ts *timespec, ns int64) {
	ts.sec = ns / 1_000_000_000
	ts.nsec = ns % 1_000_000_000
}
