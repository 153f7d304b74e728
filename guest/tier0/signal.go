package tier0

// Signals, delivered the way Linux delivers them to a process: a struct rt_sigframe on the
// thread's stack (or its sigaltstack with SA_ONSTACK), the handler entered with (sig,
// &siginfo, &ucontext), and rt_sigreturn restoring the interrupted context. The Go
// runtime needs this for asynchronous preemption (SIGURG from tgkill) and to turn faults
// (a nil dereference) into panics.

import (
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
	"github.com/pithvm/pith/guest/x86"
)

const (
	maxSignals   = 64
	sigKill      = 9
	sigStop      = 19
	sigBlock     = 0
	sigUnblock   = 1
	sigSetmask   = 2
	sigactionLen = 32 // struct sigaction for rt_sigaction: handler, flags, restorer, mask
	stackTLen    = 24 // stack_t: ss_sp, ss_flags (+pad), ss_size

	segvMaperr = 1
	segvAccerr = 2
	ucFPXState = 1

	// struct rt_sigframe (arch/x86/include/asm/sigframe.h): pretcode, then struct
	// ucontext (uc_flags, uc_link, uc_stack, uc_mcontext, uc_sigmask), then siginfo.
)

// Signals whose default action is taken as doing nothing (abi.SignalsNotEnding).
const defaultIgnored = abi.SignalsNotEnding

// sigaction mirrors the kernel's struct sigaction on x86-64.
type sigaction struct {
	handler, flags, restorer, mask uint64
}

var (
	sigactions [maxSignals]sigaction
	debugFP    uint32
)

//go:nosplit
func sysRtSigaction(sig, act, oact, size uint64) int64 {
	if sig < 1 || sig > maxSignals || size != 8 {
		return -linux.EINVAL
	}
	if (act != 0 && !mapped(uintptr(act), sigactionLen)) || (oact != 0 && !mapped(uintptr(oact), sigactionLen)) {
		return -linux.EFAULT
	}
	slot := &sigactions[(sig-1)&(maxSignals-1)]
	if oact != 0 {
		*(*sigaction)(x86.Pointer(uintptr(oact))) = *slot
	}
	if act != 0 {
		if sig == sigKill || sig == sigStop {
			return -linux.EINVAL
		}
		*slot = *(*sigaction)(x86.Pointer(uintptr(act)))
	}
	return 0
}

//go:nosplit
func sysRtSigprocmask(how, set, oset, size uint64) int64 {
	if size != 8 {
		return -linux.EINVAL
	}
	if (set != 0 && !mapped(uintptr(set), 8)) || (oset != 0 && !mapped(uintptr(oset), 8)) {
		return -linux.EFAULT
	}
	t := current()
	old := t.sigmask
	if set != 0 {
		m := *(*uint64)(x86.Pointer(uintptr(set))) &^ (1<<(sigKill-1) | 1<<(sigStop-1))
		switch how {
		case sigBlock:
			t.sigmask |= m
		case sigUnblock:
			t.sigmask &^= m
		case sigSetmask:
			t.sigmask = m
		default:
			return -linux.EINVAL
		}
	}
	if oset != 0 {
		*(*uint64)(x86.Pointer(uintptr(oset))) = old
	}
	return 0
}

//go:nosplit
func sysSigaltstack(ss, oss uint64) int64 {
	if (ss != 0 && !mapped(uintptr(ss), stackTLen)) || (oss != 0 && !mapped(uintptr(oss), stackTLen)) {
		return -linux.EFAULT
	}
	t := current()
	if oss != 0 {
		p := uintptr(oss)
		flags := t.altFlags
		if t.altSize == 0 {
			flags = linux.SS_DISABLE
		}
		*(*uint64)(x86.Pointer(p)) = t.altSP
		*(*uint64)(x86.Pointer(p + 8)) = flags
		*(*uint64)(x86.Pointer(p + 16)) = t.altSize
	}
	if ss != 0 {
		p := uintptr(ss)
		flags := *(*uint32)(x86.Pointer(p + 8))
		if flags&linux.SS_DISABLE != 0 {
			t.altSP, t.altSize, t.altFlags = 0, 0, 0
		} else {
			t.altSP = *(*uint64)(x86.Pointer(p))
			t.altSize = *(*uint64)(x86.Pointer(p + 16))
			t.altFlags = uint64(flags)
		}
	}
	return 0
}

//go:nosplit
func sigbit(sig uint64) uint64 { return 1 << ((sig - 1) & 63) }

// threadByTID finds a live thread, or -1.
//
//go:nosplit
func threadByTID(tid int64) int32 {
	i := int32(tid - 1)
	if i < 0 || i >= liveLimit || threadAt(i).state == threadFree {
		return -1
	}
	return i
}

// sysTgkill implements tgkill(2) and tkill(2) (tgid is ignored: there is one process).
//
//go:nosplit
func sysTgkill(tid, sig uint64) int64 {
	i := threadByTID(int64(tid))
	if i < 0 {
		return -linux.ESRCH
	}
	if sig == 0 {
		return 0
	}
	if sig > maxSignals {
		return -linux.EINVAL
	}
	postSignal(i, sig)
	return 0
}

// sysKill implements kill(2) for this process: the signal goes to a thread not blocking it.
//
//go:nosplit
func sysKill(pid, sig uint64) int64 {
	if int64(pid) != 1 && pid != 0 && int64(pid) != -1 {
		return -linux.ESRCH
	}
	if sig == 0 {
		return 0
	}
	if sig > maxSignals {
		return -linux.EINVAL
	}
	target := thisCPU().cur
	for i := int32(0); i < liveLimit; i++ {
		if t := threadAt(i); t.state != threadFree && t.sigmask&sigbit(sig) == 0 {
			target = i
			break
		}
	}
	postSignal(target, sig)
	return 0
}

// postSignal marks sig pending on thread i and interrupts a wait it is blocked in.
//
//go:nosplit
func postSignal(i int32, sig uint64) {
	t := threadAt(i)
	act := &sigactions[(sig-1)&(maxSignals-1)]
	if act.handler == linux.SIG_IGN || act.handler == linux.SIG_DFL && defaultIgnored&sigbit(sig) != 0 {
		return
	}
	t.pending |= sigbit(sig)
	switch {
	case t.sigmask&sigbit(sig) != 0:
	case t.state == threadBlocked:
		wake(i, -linux.EINTR)
	case t.onCPU >= 0 && t.onCPU != int32(thisCPU().hw.ID):
		sendWakeup(t.onCPU) // it takes the signal on its way back from the interrupt
	}
}

// deliverSignal enters the handler of one deliverable pending signal of the current
// thread, if any. It is the last step before returning to a thread.
//
//go:nosplit
func deliverSignal() {
	t := current()
	syncApp(t)
	ready := t.pending &^ t.sigmask
	if t.app != 0 {
		// Signals are tier 1's: take the thread out of the app first.
		if ready == 0 && !t.kicked {
			return
		}
		leaveApp(t, abi.AppKicked, 0)
		ready = t.pending &^ t.sigmask
	}
	if ready == 0 {
		return
	}
	sig := uint64(1)
	for ready&1 == 0 {
		ready >>= 1
		sig++
	}
	t.pending &^= sigbit(sig)
	code, faultAddr := int64(linux.SI_TKILL), uint64(0)
	if t.faultSig == sig {
		code, faultAddr = t.faultCode, t.faultAddr
		t.faultSig = 0
	}
	act := &sigactions[(sig-1)&(maxSignals-1)]
	if act.handler == linux.SIG_DFL {
		// The default action of every signal that reaches here is to end the process.
		exitGuest(abi.ExitSignaled + uint32(sig))
	}
	if !setupFrame(t, sig, act, code, faultAddr) {
		exitGuest(abi.ExitSignaled + linux.SIGSEGV) // no room for the frame: Linux kills with SIGSEGV too
	}
	if act.flags&linux.SA_NODEFER == 0 {
		t.sigmask |= sigbit(sig)
	}
	t.sigmask |= act.mask &^ (sigbit(sigKill) | sigbit(sigStop))
	if act.flags&linux.SA_RESETHAND != 0 {
		act.handler = linux.SIG_DFL
	}
}

// setupFrame builds a struct rt_sigframe for sig and points the thread at the handler.
//
//go:nosplit
func setupFrame(t *thread, sig uint64, act *sigaction, code int64, faultAddr uint64) bool {
	r := &t.regs
	sp := r.RSP - linux.RedZone
	onAlt := t.altSize != 0 && r.RSP > t.altSP && r.RSP <= t.altSP+t.altSize
	if act.flags&linux.SA_ONSTACK != 0 && t.altSize != 0 && !onAlt {
		sp = t.altSP + t.altSize
	}
	fpstate := (sp - xsaveAreaSize) &^ 63
	frame := ((fpstate - linux.SigframeSize) &^ 15) - 8
	if !mapped(uintptr(frame), uintptr(sp-frame)) {
		return false
	}
	f := uintptr(frame)
	zeroBytes(f, linux.SigframeSize)
	copyBytes(uintptr(fpstate), t.xsave, xsaveAreaSize)
	*(*uint64)(x86.Pointer(f)) = act.restorer
	uc := f + linux.SigframeUcontext
	*(*uint64)(x86.Pointer(uc)) = ucFPXState
	*(*uint64)(x86.Pointer(uc + linux.UcontextStack)) = t.altSP
	altFlags := uint64(linux.SS_DISABLE)
	if t.altSize != 0 {
		altFlags = 0
		if onAlt {
			altFlags = linux.SS_ONSTACK
		}
	}
	*(*uint64)(x86.Pointer(uc + linux.UcontextStack + 8)) = altFlags
	*(*uint64)(x86.Pointer(uc + linux.UcontextStack + 16)) = t.altSize
	saveMcontext(uc+linux.UcontextMcontext, r, fpstate)
	*(*uint64)(x86.Pointer(uc + linux.UcontextSigmask)) = t.sigmask
	info := f + linux.SigframeSiginfo
	*(*int32)(x86.Pointer(info)) = int32(sig)
	*(*int32)(x86.Pointer(info + 8)) = int32(code)
	if code == linux.SI_TKILL {
		*(*int32)(x86.Pointer(info + 16)) = 1 // si_pid
	} else {
		*(*uint64)(x86.Pointer(info + 16)) = faultAddr // si_addr
	}
	r.RSP = frame
	r.RIP = act.handler
	r.RDI = sig
	r.RSI = uint64(info)
	r.RDX = uint64(uc)
	r.RAX = 0
	r.RFLAGS &^= 1<<10 | 1<<8 // DF, TF
	return true
}

// mcontextRegs lists abi.Regs fields in struct sigcontext's order (r8 ... rip, eflags).
var mcontextRegs = [18]uintptr{
	unsafe.Offsetof(abi.Regs{}.R8), unsafe.Offsetof(abi.Regs{}.R9),
	unsafe.Offsetof(abi.Regs{}.R10), unsafe.Offsetof(abi.Regs{}.R11),
	unsafe.Offsetof(abi.Regs{}.R12), unsafe.Offsetof(abi.Regs{}.R13),
	unsafe.Offsetof(abi.Regs{}.R14), unsafe.Offsetof(abi.Regs{}.R15),
	unsafe.Offsetof(abi.Regs{}.RDI), unsafe.Offsetof(abi.Regs{}.RSI),
	unsafe.Offsetof(abi.Regs{}.RBP), unsafe.Offsetof(abi.Regs{}.RBX),
	unsafe.Offsetof(abi.Regs{}.RDX), unsafe.Offsetof(abi.Regs{}.RAX),
	unsafe.Offsetof(abi.Regs{}.RCX), unsafe.Offsetof(abi.Regs{}.RSP),
	unsafe.Offsetof(abi.Regs{}.RIP), unsafe.Offsetof(abi.Regs{}.RFLAGS),
}

// saveMcontext writes struct sigcontext (arch/x86/include/uapi/asm/sigcontext.h).
//
//go:nosplit
func saveMcontext(mc uintptr, r *abi.Regs, fpstate uint64) {
	regs := uintptr(unsafe.Pointer(r))
	for i := uintptr(0); i < 18; i++ {
		*(*uint64)(x86.Pointer(mc + 8*i)) = *(*uint64)(x86.Pointer(regs + mcontextRegs[i]))
	}
	*(*uint16)(x86.Pointer(mc + 144)) = abi.SelUserCode
	*(*uint16)(x86.Pointer(mc + 150)) = abi.SelUserData
	*(*uint64)(x86.Pointer(mc + 152)) = r.ErrorCode // err
	*(*uint64)(x86.Pointer(mc + 160)) = r.Vector    // trapno
	*(*uint64)(x86.Pointer(mc + linux.McontextFPState)) = fpstate
}

// sysRtSigreturn restores the context saved by setupFrame.
//
//go:nosplit
func sysRtSigreturn() int64 {
	t := current()
	r := &t.regs
	uc := uintptr(r.RSP) - 8 + linux.SigframeUcontext
	if !mapped(uc, linux.SigframeSize) {
		exitGuest(abi.ExitSignaled + linux.SIGSEGV)
	}
	mc := uc + linux.UcontextMcontext
	flags := r.RFLAGS
	regs := uintptr(unsafe.Pointer(r))
	for i := uintptr(0); i < 18; i++ {
		*(*uint64)(x86.Pointer(regs + mcontextRegs[i])) = *(*uint64)(x86.Pointer(mc + 8*i))
	}
	const userFlags = 0x3f7fd5 // what a thread may change: not IOPL, VM, VIF...
	r.RFLAGS = (flags &^ userFlags) | (r.RFLAGS & userFlags) | 1<<9
	if fp := uintptr(*(*uint64)(x86.Pointer(mc + linux.McontextFPState))); fp != 0 && mapped(fp, xsaveAreaSize) {
		copyBytes(t.xsave, fp, xsaveAreaSize)
		// Keep XRSTOR from faulting on a corrupted header: clear reserved bits.
		*(*uint64)(x86.Pointer(t.xsave + 512 + 8)) = 0
	}
	t.sigmask = *(*uint64)(x86.Pointer(uc + linux.UcontextSigmask)) &^ (sigbit(sigKill) | sigbit(sigStop))
	return int64(r.RAX)
}

// faultSignal turns an exception in a thread into a synchronous signal. It reports false
// if the thread cannot take it (no handler, or the signal is blocked): then the guest dies.
//
//go:nosplit
func faultSignal(t *thread, cr2 uint64) bool {
	var sig uint64
	code := int64(linux.SI_KERNEL)
	switch t.regs.Vector {
	case 0: // divide error
		sig, code = linux.SIGFPE, 1 // FPE_INTDIV
	case 16, 19: // x87 and SIMD floating-point errors
		sig, code = linux.SIGFPE, 7 // FPE_FLTINV
		if debugFP == 0 {
			debugFP = 1
			printk("pith: tier 0: floating-point exception ")
			printkHex(t.regs.Vector)
			printk(" mxcsr ")
			printkHex(uint64(*(*uint32)(x86.Pointer(t.xsave + xsaveMXCSR))))
			printk(" xstate_bv ")
			printkHex(*(*uint64)(x86.Pointer(t.xsave + 512)))
			printk(" mode ")
			printkHex(uint64(vectorMode))
			_, b, c, _ := x86.CPUID(0xd, 0)
			printk(" xsave size ")
			printkHex(uint64(b))
			printk(" max ")
			printkHex(uint64(c))
			printk(" xcr0 ")
			printkHex(x86.XCR0())
			printk("\n")
		}
	case 1, 3: // debug, breakpoint
		sig = linux.SIGTRAP
	case 6: // invalid opcode
		sig, code = linux.SIGILL, 2
	case 14:
		sig, code = linux.SIGSEGV, segvMaperr
		if t.regs.ErrorCode&1 != 0 {
			code = segvAccerr
		}
	case 13, 12, 17: // general protection, stack fault, alignment
		sig = linux.SIGSEGV
	default:
		return false
	}
	act := &sigactions[(sig-1)&(maxSignals-1)]
	if act.handler == linux.SIG_DFL || act.handler == linux.SIG_IGN || t.sigmask&sigbit(sig) != 0 {
		return false
	}
	t.faultSig, t.faultCode, t.faultAddr = sig, code, cr2
	t.pending |= sigbit(sig)
	return true
}
