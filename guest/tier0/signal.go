package tier0

// Signal dispositions and masks, kept as Linux keeps them. Delivery into tier 1 is not
// implemented yet: tgkill is accepted and dropped, so the Go runtime's asynchronous
// preemption (SIGURG) falls back to cooperative preemption.

const (
	maxSignals   = 64
	sigKill      = 9
	sigStop      = 19
	sigBlock     = 0
	sigUnblock   = 1
	sigSetmask   = 2
	ssDisable    = 2
	sigactionLen = 32 // struct sigaction for rt_sigaction: handler, flags, restorer, mask
	stackTLen    = 24 // stack_t: ss_sp, ss_flags (+pad), ss_size
)

// sigaction mirrors the kernel's struct sigaction on x86-64.
type sigaction struct {
	handler, flags, restorer, mask uint64
}

var sigactions [maxSignals]sigaction

//go:nosplit
func sysRtSigaction(sig, act, oact, size uint64) int64 {
	if sig < 1 || sig > maxSignals || size != 8 {
		return -errEINVAL
	}
	if (act != 0 && !mapped(uintptr(act), sigactionLen)) || (oact != 0 && !mapped(uintptr(oact), sigactionLen)) {
		return -errEFAULT
	}
	slot := &sigactions[(sig-1)&(maxSignals-1)]
	if oact != 0 {
		*(*sigaction)(addr(uintptr(oact))) = *slot
	}
	if act != 0 {
		if sig == sigKill || sig == sigStop {
			return -errEINVAL
		}
		*slot = *(*sigaction)(addr(uintptr(act)))
	}
	return 0
}

//go:nosplit
func sysRtSigprocmask(how, set, oset, size uint64) int64 {
	if size != 8 {
		return -errEINVAL
	}
	if (set != 0 && !mapped(uintptr(set), 8)) || (oset != 0 && !mapped(uintptr(oset), 8)) {
		return -errEFAULT
	}
	t := current()
	old := t.sigmask
	if set != 0 {
		m := *(*uint64)(addr(uintptr(set))) &^ (1<<(sigKill-1) | 1<<(sigStop-1))
		switch how {
		case sigBlock:
			t.sigmask |= m
		case sigUnblock:
			t.sigmask &^= m
		case sigSetmask:
			t.sigmask = m
		default:
			return -errEINVAL
		}
	}
	if oset != 0 {
		*(*uint64)(addr(uintptr(oset))) = old
	}
	return 0
}

//go:nosplit
func sysSigaltstack(ss, oss uint64) int64 {
	if (ss != 0 && !mapped(uintptr(ss), stackTLen)) || (oss != 0 && !mapped(uintptr(oss), stackTLen)) {
		return -errEFAULT
	}
	t := current()
	if oss != 0 {
		p := uintptr(oss)
		flags := t.altFlags
		if t.altSize == 0 {
			flags = ssDisable
		}
		*(*uint64)(addr(p)) = t.altSP
		*(*uint64)(addr(p + 8)) = flags
		*(*uint64)(addr(p + 16)) = t.altSize
	}
	if ss != 0 {
		p := uintptr(ss)
		flags := *(*uint32)(addr(p + 8))
		if flags&ssDisable != 0 {
			t.altSP, t.altSize, t.altFlags = 0, 0, 0
		} else {
			t.altSP = *(*uint64)(addr(p))
			t.altSize = *(*uint64)(addr(p + 16))
			t.altFlags = uint64(flags)
		}
	}
	return 0
}
