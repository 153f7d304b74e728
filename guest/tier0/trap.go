package tier0

import "github.com/pithvm/pith/abi"

const vectorPageFault = 14

// handleTrap serves an exception or interrupt taken while a thread ran.
//
//go:nosplit
func handleTrap() {
	t := current()
	syncApp(t)
	bi := info()
	switch t.regs.Vector {
	case vectorTimer:
		bi.Stats.Interrupts++
		timerInterrupt()
		return
	case vectorWakeup:
		bi.Stats.Interrupts++
		bi.Stats.Wakeups++
		wrmsr(msrX2APICEOI, 0)
		schedule(false)
		return
	case vectorSpurious:
		bi.Stats.Interrupts++
		schedule(false)
		return
	}
	bi.Stats.Exceptions++
	var cr2 uint64
	if t.regs.Vector == vectorPageFault {
		cr2 = readCR2()
		switch {
		case present(cr2):
			// A present page can fault only through a stale translation: flush, retry.
			invlpg(uintptr(cr2))
			schedule(false)
			return
		case cr2 < abi.UserVAEnd && backOnAccess(cr2):
			bi.Stats.Exceptions--
			bi.Stats.PageFaults++
			schedule(false)
			return
		}
	}
	if t.app != 0 {
		leaveApp(t, abi.AppException, cr2)
		schedule(false)
		return
	}
	if faultSignal(t, cr2) {
		schedule(false)
		return
	}
	crash(abi.CrashException, &t.regs, cr2, 0)
}

// tier0Fault is called by trapCommon for an exception inside tier 0 itself.
//
//go:nosplit
func tier0Fault() {
	crash(abi.CrashTier0Fault, &crashRegs, readCR2(), 1)
}

// crash reports the guest's death to the monitor, which prints it and exits; it does not
// return.
//
//go:nosplit
func crash(kind abi.CrashKind, r *abi.Regs, cr2, inTier0 uint64) {
	bi := info()
	bi.Crash.Regs = *r
	bi.Crash.CR2 = cr2
	bi.Crash.Tier0 = inTier0
	bi.Crash.CPU = thisCPU().hw.ID
	if c := thisCPU().cur; c >= 0 {
		bi.Crash.FSBase = threadAt(c).fsbase
	}
	consoleFlush()
	for {
		outl(abi.PortCrash, uint32(kind))
		halt()
	}
}

// badState stops the guest when tier 0 finds its own invariants broken, naming the value
// that gave it away, rather than run on and corrupt tier 1.
//
//go:nosplit
func badState(detail uint64) {
	info().Crash.Info = detail
	crash(abi.CrashBadState, &current().regs, 0, 1)
}
