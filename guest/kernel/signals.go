package kernel

import (
	"encoding/binary"
	"math/bits"
	"os"
	"time"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
	"github.com/pithvm/pith/guest/x86"
)

// App signals, kept and delivered as Linux does: dispositions per process, masks and
// pending sets per thread, a struct rt_sigframe on the app's stack (or its sigaltstack)
// and rt_sigreturn to come back.

// sigaction mirrors the kernel's struct sigaction on x86-64.
type sigaction struct {
	handler, flags, restorer, mask uint64
}

const (
	sigKILL = 9
	sigSTOP = 19
	sigSEGV = 11
	sigBUS  = 7
	sigPIPE = 13

	// struct rt_sigframe (arch/x86/include/asm/sigframe.h).
)

// Signals whose default action is taken as doing nothing (abi.SignalsNotEnding).
const defaultIgnored = abi.SignalsNotEnding

func sigbit(sig uint64) uint64 { return 1 << ((sig - 1) & 63) }

func sysRtSigaction(t *Task, a [6]uint64) int64 {
	sig, act, oact, size := a[0], a[1], a[2], a[3]
	if sig < 1 || sig > 64 || size != 8 {
		return -linux.EINVAL
	}
	// In Linux's order: the new action is read first (a fault changes nothing), the old
	// one written last (a fault there answers EFAULT with the new action in place).
	var next sigaction
	if act != 0 {
		var ok bool
		if next, ok = getApp[sigaction](act); !ok {
			return -linux.EFAULT
		}
		if sig == sigKILL || sig == sigSTOP {
			return -linux.EINVAL
		}
	}
	p := t.proc
	p.mu.Lock()
	old := p.sigaction[sig-1]
	if act != 0 {
		p.sigaction[sig-1] = next
		if next.handler == linux.SIG_IGN || next.handler == linux.SIG_DFL && kernelIgnored&sigbit(sig) != 0 {
			for _, t := range p.tasks { // discarded where pending, as Linux does
				t.pending &^= sigbit(sig)
			}
		}
	}
	p.mu.Unlock()
	if oact != 0 && !putApp(oact, old) {
		return -linux.EFAULT
	}
	return 0
}

// validVectorState checks a vector state the app hands back in a signal frame as Linux
// does before restoring one: no MXCSR bit the CPU lacks (cur, the state saved by this
// CPU, holds its MXCSR_MASK), no component XCR0 does not enable, the standard format
// (XCOMP_BV 0) and a zero reserved header.
func validVectorState(state, cur []byte) bool {
	le := binary.LittleEndian
	mask := le.Uint32(cur[28:])
	if mask == 0 {
		mask = 0xffbf // the architectural default
	}
	if le.Uint32(state[24:])&^mask != 0 {
		return false
	}
	var enabled uint64
	if _, _, ecx, _ := x86.CPUID(1, 0); ecx&x86.OSXSAVE != 0 {
		enabled = x86.XCR0()
	}
	if enabled == 0 {
		return true // FXSAVE only: the header is not used
	}
	if le.Uint64(state[512:])&^enabled != 0 {
		return false
	}
	for _, b := range state[520:576] {
		if b != 0 {
			return false
		}
	}
	return true
}

// kernelIgnored are the signals Linux ignores by default (sig_kernel_ignore): SIG_DFL for
// one of them, like SIG_IGN for any, discards it where pending. (The stop signals, which
// pith takes as doing nothing, stay pending: a handler may yet be installed for them.)
const kernelIgnored = 1<<(17-1) | 1<<(18-1) | 1<<(23-1) | 1<<(28-1) // CHLD, CONT, URG, WINCH

func sysRtSigprocmask(t *Task, a [6]uint64) int64 {
	how, set, oset, size := a[0], a[1], a[2], a[3]
	if size != 8 {
		return -linux.EINVAL
	}
	// In Linux's order: the new mask is read first, the old one written last.
	old := t.sigmask
	if set != 0 {
		m, ok := getApp[uint64](set)
		if !ok {
			return -linux.EFAULT
		}
		m &^= sigbit(sigKILL) | sigbit(sigSTOP)
		switch how {
		case 0:
			t.sigmask |= m
		case 1:
			t.sigmask &^= m
		case 2:
			t.sigmask = m
		default:
			return -linux.EINVAL
		}
	}
	if oset != 0 && !putApp(oset, old) {
		return -linux.EFAULT
	}
	return 0
}

func sysSigaltstack(t *Task, a [6]uint64) int64 {
	ss, oss := a[0], a[1]
	// In Linux's order: the new stack is read and set first, the old one written last
	// (a fault there answers EFAULT with the new stack in place).
	oldSP, oldSize := t.altSP, t.altSize
	if ss != 0 {
		var b [24]byte
		if !copyIn(ss, b[:]) {
			return -linux.EFAULT
		}
		if binary.LittleEndian.Uint32(b[8:])&linux.SS_DISABLE != 0 {
			t.altSP, t.altSize = 0, 0
		} else {
			t.altSP, t.altSize = binary.LittleEndian.Uint64(b[:]), binary.LittleEndian.Uint64(b[16:])
		}
	}
	if oss != 0 {
		var b [24]byte
		flags := uint64(0)
		if oldSize == 0 {
			flags = linux.SS_DISABLE
		}
		binary.LittleEndian.PutUint64(b[:], oldSP)
		binary.LittleEndian.PutUint64(b[8:], flags)
		binary.LittleEndian.PutUint64(b[16:], oldSize)
		if !copyOut(oss, b[:]) {
			return -linux.EFAULT
		}
	}
	return 0
}

func sysTgkill(t *Task, a [6]uint64) int64 {
	tid, sig := int32(a[1]), a[2]
	target := t.proc.task(tid)
	if target == nil {
		return -linux.ESRCH
	}
	if sig == 0 {
		return 0
	}
	if sig > 64 {
		return -linux.EINVAL
	}
	t.proc.post(target, sig)
	return 0
}

func sysKill(t *Task, a [6]uint64) int64 {
	if a[1] > 64 {
		return -linux.EINVAL
	}
	if r, ok := t.proc.killChild(int32(a[0]), a[1]); ok {
		return r
	}
	pid := int32(a[0])
	if pid == parentPID.Load() && pid != abi.AppPPID { // a fork's child to its parent
		return fileRequest(&abi.FileRequest{Op: abi.FileKillParent, Flags: a[1]})
	}
	if pid > 0 && pid != selfPID.Load() {
		// No process pith knows: a child already waited for, whose ID a program may still
		// signal (Python's send_signal after the wait races it), answers ESRCH as on
		// Linux; it must not reach the caller.
		return -linux.ESRCH
	}
	if a[1] == 0 {
		return 0
	}
	t.proc.postProcess(a[1]) // to the process: a thread that does not block it takes it
	return 0
}

// postProcess sends sig to the process, as kill does: a thread that does not block it
// takes it (the first such), else the first thread.
func (p *Process) postProcess(sig uint64) {
	blocks := func(t *Task) bool { return t.sigmask&sigbit(sig) != 0 }
	p.mu.Lock()
	var target *Task
	for _, t := range p.tasks {
		if !t.exited && (target == nil || blocks(target) && !blocks(t) || blocks(target) == blocks(t) && t.tid < target.tid) {
			target = t
		}
	}
	if target == nil {
		p.mu.Unlock()
		return
	}
	pending, takes := p.pend(target, sig)
	p.mu.Unlock()
	if pending {
		target.take(takes)
	}
}

// post makes sig pending on target and gets it out of app code to take it.
func (p *Process) post(target *Task, sig uint64) {
	p.mu.Lock()
	pending, takes := p.pend(target, sig)
	p.mu.Unlock()
	if pending {
		target.take(takes)
	}
}

// take gets t to a signal just made pending: out of app code (kick), and, where t takes
// it (does not block it), out of a call waiting in tier 1.
func (t *Task) take(takes bool) {
	if takes {
		t.interrupt()
	}
	kick(t)
}

// pend makes sig pending on t unless the process ignores it, and reports whether it did
// and whether t takes it now (does not block it). p.mu is held.
func (p *Process) pend(t *Task, sig uint64) (pending, takes bool) {
	takes = t.sigmask&sigbit(sig) == 0
	if takes && p.sigaction[sig-1].ignored(sig) {
		return false, false // a blocked one stays pending: a handler may be installed before unblocking
	}
	t.pending |= sigbit(sig)
	return true, takes
}

// ignored reports whether delivering signal sig with this action does nothing: SIG_IGN,
// or SIG_DFL where the default does nothing (abi.SignalsNotEnding).
func (act sigaction) ignored(sig uint64) bool {
	return act.handler == linux.SIG_IGN || act.handler == linux.SIG_DFL && defaultIgnored&sigbit(sig) != 0
}

// deliverSignals enters the handler of a deliverable pending signal, before the task
// returns to app code.
func (t *Task) deliverSignals() {
	p := t.proc
	p.mu.Lock()
	var sig uint64
	var act sigaction
	for ready := t.pending &^ t.sigmask; ready != 0; ready &= ready - 1 {
		sig = uint64(bits.TrailingZeros64(ready)) + 1
		t.pending &^= sigbit(sig)
		if act = p.sigaction[sig-1]; !act.ignored(sig) {
			break // the lowest deliverable one; ignored ones are dropped, as Linux's get_signal
		}
		sig = 0
	}
	if sig != 0 && act.flags&linux.SA_RESETHAND != 0 {
		p.sigaction[sig-1].handler = linux.SIG_DFL
	}
	p.mu.Unlock()
	if t.restartNr != 0 {
		// A call a signal interrupted is made again where no handler runs, or where the
		// handler's SA_RESTART says so, as Linux does for ERESTARTSYS; the app's RIP
		// goes back over its SYSCALL (two bytes), so the frame returns to it.
		if sig == 0 || act.handler != linux.SIG_DFL && act.flags&linux.SA_RESTART != 0 {
			r := &t.ctx.Regs
			r.RIP -= 2
			r.RAX = t.restartNr - 1
		}
		t.restartNr = 0
	}
	if sig != 0 {
		t.enterHandler(sig, act, linux.SI_TKILL, 0)
	}
	if t.suspended { // no handler ran: the task's own mask is back at once
		t.sigmask, t.suspended = t.savedMask, false
	}
}

// sysPause waits until a signal the task takes arrives, and answers EINTR.
func sysPause(t *Task, a [6]uint64) int64 {
	for t.sleep(time.Hour) {
	}
	return -linux.EINTR
}

// sysRtSigsuspend waits, with the signal mask at a[0] in place of the task's, until a
// signal it does not block arrives, and answers EINTR: the handler runs with that mask
// and returns to the task's own.
func sysRtSigsuspend(t *Task, a [6]uint64) int64 {
	if a[1] != 8 {
		return -linux.EINVAL
	}
	m, ok := getApp[uint64](a[0])
	if !ok {
		return -linux.EFAULT
	}
	p := t.proc
	p.mu.Lock()
	t.savedMask, t.suspended = t.sigmask, true
	t.sigmask = m &^ (sigbit(sigKILL) | sigbit(sigSTOP))
	ready := t.pending&^t.sigmask != 0
	p.mu.Unlock()
	if ready { // pending all along, blocked until now
		return -linux.EINTR
	}
	return sysPause(t, a)
}

// enterHandler builds the signal frame and points the app thread at the handler; a
// signal with the default action ends the process, as death by that signal.
func (t *Task) enterHandler(sig uint64, act sigaction, code int64, addr uint64) {
	if act.handler == linux.SIG_DFL {
		t.proc.killedBy(int(sig))
		return // a vfork child's end comes back here (killedBy ends the guest otherwise)
	}
	defer catchAppFault(func() { t.proc.killedBy(sigSEGV) }) // no stack for the frame, as Linux
	r := &t.ctx.Regs
	sp := r.RSP - linux.RedZone
	onAlt := t.altSize != 0 && r.RSP > t.altSP && r.RSP <= t.altSP+t.altSize
	if act.flags&linux.SA_ONSTACK != 0 && t.altSize != 0 && !onAlt {
		sp = t.altSP + t.altSize
	}
	fpstate := (sp - xsaveSize) &^ 63
	frame := ((fpstate - linux.SigframeSize) &^ 15) - 8
	stack, ok := appSlice(frame, sp-frame) // the frame, then the vector state at fpstate
	if !ok {
		t.proc.killedBy(sigSEGV)
		return
	}
	f := stack[:linux.SigframeSize]
	clear(f)
	copy(stack[fpstate-frame:], t.xsave())
	le := binary.LittleEndian
	le.PutUint64(f, act.restorer)
	uc := f[linux.SigframeUcontext:]
	le.PutUint64(uc, 1) // UC_FP_XSTATE
	le.PutUint64(uc[linux.UcontextStack:], t.altSP)
	altFlags := uint64(linux.SS_DISABLE)
	if t.altSize != 0 {
		altFlags = 0
		if onAlt {
			altFlags = linux.SS_ONSTACK
		}
	}
	le.PutUint64(uc[linux.UcontextStack+8:], altFlags)
	le.PutUint64(uc[linux.UcontextStack+16:], t.altSize)
	mc := uc[linux.UcontextMcontext:]
	for i, v := range [18]uint64{r.R8, r.R9, r.R10, r.R11, r.R12, r.R13, r.R14, r.R15,
		r.RDI, r.RSI, r.RBP, r.RBX, r.RDX, r.RAX, r.RCX, r.RSP, appPC(r.RIP), r.RFLAGS} {
		le.PutUint64(mc[8*i:], v)
	}
	le.PutUint16(mc[144:], abi.SelUserCode)
	le.PutUint16(mc[150:], abi.SelUserData)
	le.PutUint64(mc[152:], r.ErrorCode)
	le.PutUint64(mc[160:], r.Vector)
	mask := t.sigmask // what the handler's return restores
	if t.suspended {
		mask, t.suspended = t.savedMask, false
	}
	le.PutUint64(mc[168:], mask) // oldmask
	le.PutUint64(mc[176:], addr) // cr2
	le.PutUint64(mc[linux.McontextFPState:], fpstate)
	le.PutUint64(uc[linux.UcontextSigmask:], mask)
	info := f[linux.SigframeSiginfo:]
	le.PutUint32(info, uint32(sig))
	le.PutUint32(info[8:], uint32(int32(code)))
	if code == linux.SI_TKILL {
		le.PutUint32(info[16:], uint32(selfPID.Load())) // si_pid
	} else {
		le.PutUint64(info[16:], addr) // si_addr
	}
	if act.flags&linux.SA_NODEFER == 0 {
		t.sigmask |= sigbit(sig)
	}
	t.sigmask |= act.mask &^ (sigbit(sigKILL) | sigbit(sigSTOP))
	r.RSP = frame
	r.RIP = act.handler
	r.RDI = sig
	r.RSI = frame + linux.SigframeSiginfo
	r.RDX = frame + linux.SigframeUcontext
	r.RAX = 0
	r.RFLAGS &^= 1<<10 | 1<<8
}

// sysRtSigreturn restores the context enterHandler saved.
func sysRtSigreturn(t *Task, a [6]uint64) int64 {
	defer catchAppFault(func() { t.proc.killedBy(sigSEGV) }) // a frame the app never mapped, as Linux
	r := &t.ctx.Regs
	uc, ok := appSlice(r.RSP-8+linux.SigframeUcontext, linux.SigframeSize)
	if !ok {
		t.proc.killedBy(sigSEGV)
		return 0
	}
	le := binary.LittleEndian
	mc := uc[linux.UcontextMcontext:]
	regs := [18]*uint64{&r.R8, &r.R9, &r.R10, &r.R11, &r.R12, &r.R13, &r.R14, &r.R15,
		&r.RDI, &r.RSI, &r.RBP, &r.RBX, &r.RDX, &r.RAX, &r.RCX, &r.RSP, &r.RIP, &r.RFLAGS}
	for i, p := range regs {
		*p = le.Uint64(mc[8*i:])
	}
	if fp := le.Uint64(mc[linux.McontextFPState:]); fp != 0 {
		if t.frameState == nil {
			t.frameState = make([]byte, xsaveSize)
		}
		state := t.frameState  // a copy: the app cannot change it between the check and the use
		if copyIn(fp, state) { // outside the app's memory: the vector state stays as it is
			if !validVectorState(state, t.xsave()) {
				t.proc.killedBy(sigSEGV) // XRSTOR would fault in tier 0; Linux refuses it too
				return 0
			}
			copy(t.xsave(), state)
		}
	}
	t.sigmask = le.Uint64(uc[linux.UcontextSigmask:]) &^ (sigbit(sigKILL) | sigbit(sigSTOP))
	return int64(r.RAX)
}

// exception turns an exception in app code into a signal, as Linux would.
func (t *Task) exception() {
	r := &t.ctx.Regs
	var sig uint64
	code := int64(linux.SI_KERNEL)
	switch r.Vector {
	case 0:
		sig, code = linux.SIGFPE, 1 // FPE_INTDIV
	case 16, 19:
		sig, code = linux.SIGFPE, 7
	case 1, 3:
		sig = linux.SIGTRAP
	case 6:
		sig, code = linux.SIGILL, 2
	case 14:
		sig, code = sigSEGV, 1 // SEGV_MAPERR
		if r.ErrorCode&1 != 0 {
			code = 2 // SEGV_ACCERR
		}
	case 13, 12, 17:
		sig = sigSEGV
	default:
		sig = sigBUS
	}
	p := t.proc
	p.mu.Lock()
	act := p.sigaction[sig-1]
	blocked := t.sigmask&sigbit(sig) != 0
	p.mu.Unlock()
	if blocked || act.handler == linux.SIG_IGN {
		act.handler = linux.SIG_DFL // a fault cannot be ignored or blocked: Linux kills
	}
	if act.handler == linux.SIG_DFL {
		os.Stderr.WriteString(faultMessage(sig, appPC(r.RIP), t.ctx.CR2))
	}
	t.enterHandler(sig, act, code, t.ctx.CR2)
}

func faultMessage(sig, rip, addr uint64) string {
	name := map[uint64]string{sigSEGV: "segmentation fault", linux.SIGFPE: "floating-point exception",
		linux.SIGILL: "illegal instruction", linux.SIGTRAP: "trace trap", sigBUS: "bus error"}[sig]
	return "pith: the app died of a " + name + " at " + hex(rip) + " (address " + hex(addr) + ")\n"
}

func hex(v uint64) string { return "0x" + itoa(v, 16) }

func itoa(v uint64, base uint64) string {
	const digits = "0123456789abcdef"
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = digits[v%base]
		v /= base
		if v == 0 {
			return string(b[i:])
		}
	}
}
