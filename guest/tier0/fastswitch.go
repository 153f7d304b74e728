package tier0

import (
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/x86"
)

// Fast calls: an app system call that tier 1 serves, made from a rewritten site (a Go
// program's syscall package), switches to tier 1 and back without a trap. Each trap costs
// 17-35 us on kvm-pvm today (docs/kvm-pvm.md), and a call tier 1 serves took two: into
// tier 0 and out to tier 1, then RUN_APP back. Both threads of control, the app's and
// tier 1's, run in user mode in one address space, so the switch is a few register loads
// and a WRFSBASE (native once CR4.FSGSBASE is set, on kvm-pvm as on hardware):
//
//   - the app's rewritten site (guest/kernel/fastcall.go) finds its thread's AppContext
//     in its vCPU's block (abi.CPU.FastCtx) and jumps to appExit, which saves the app's
//     registers there and resumes tier 1 where the context says (AppContext.Tier1*);
//   - tier 1's own system-call site is rewritten at boot (patchTier1Site) into
//     tier1Hook, which for a RUN_APP with AppContext.Fast saves where tier 1 resumes and
//     loads the app's registers (tier1Enter).
//
// Tier 0 learns of such a switch lazily: what it believes of a thread (thread.app: the
// app is running) may be stale, and the context's Active says which side really runs.
// Every tier-0 entry that acts on a thread first reconciles the two (syncApp), and a
// thread interrupted inside the switch code is first moved to one side: before appExit
// commits, back to the app at its site's SYSCALL; after, on into tier 1; inside
// tier1Enter, back to tier 1, with the entry answered AppKicked.

// Offsets the switch code uses (go_asm.h); abi.Regs is AppContext's first field.
const (
	nrRunApp        = abi.SysPithRunApp
	appKicked       = abi.AppKicked
	appFastCall     = abi.AppFastCall
	cpuFastCtx      = unsafe.Offsetof(abi.CPU{}.FastCtx)
	ctxFSBase       = unsafe.Offsetof(abi.AppContext{}.FSBase)
	ctxReason       = unsafe.Offsetof(abi.AppContext{}.Reason)
	ctxTier1RIP     = unsafe.Offsetof(abi.AppContext{}.Tier1RIP)
	ctxTier1RSP     = unsafe.Offsetof(abi.AppContext{}.Tier1RSP)
	ctxTier1RBP     = unsafe.Offsetof(abi.AppContext{}.Tier1RBP)
	ctxTier1R14     = unsafe.Offsetof(abi.AppContext{}.Tier1R14)
	ctxTier1FS      = unsafe.Offsetof(abi.AppContext{}.Tier1FS)
	ctxActive       = unsafe.Offsetof(abi.AppContext{}.Active)
	ctxKicked       = unsafe.Offsetof(abi.AppContext{}.Kicked)
	ctxFast         = unsafe.Offsetof(abi.AppContext{}.Fast)
	regsRAX         = unsafe.Offsetof(abi.Regs{}.RAX)
	regsRBX         = unsafe.Offsetof(abi.Regs{}.RBX)
	regsRCX         = unsafe.Offsetof(abi.Regs{}.RCX)
	regsRDX         = unsafe.Offsetof(abi.Regs{}.RDX)
	regsRSI         = unsafe.Offsetof(abi.Regs{}.RSI)
	regsRDI         = unsafe.Offsetof(abi.Regs{}.RDI)
	regsRBP         = unsafe.Offsetof(abi.Regs{}.RBP)
	regsR8          = unsafe.Offsetof(abi.Regs{}.R8)
	regsR9          = unsafe.Offsetof(abi.Regs{}.R9)
	regsR10         = unsafe.Offsetof(abi.Regs{}.R10)
	regsR11         = unsafe.Offsetof(abi.Regs{}.R11)
	regsR12         = unsafe.Offsetof(abi.Regs{}.R12)
	regsR13         = unsafe.Offsetof(abi.Regs{}.R13)
	regsR14         = unsafe.Offsetof(abi.Regs{}.R14)
	regsR15         = unsafe.Offsetof(abi.Regs{}.R15)
	regsRSP         = unsafe.Offsetof(abi.Regs{}.RSP)
	regsRIP         = unsafe.Offsetof(abi.Regs{}.RIP)
	regsRFLAGS      = unsafe.Offsetof(abi.Regs{}.RFLAGS)
	regsVector      = unsafe.Offsetof(abi.Regs{}.Vector)
	_               = uint(0 - unsafe.Offsetof(abi.AppContext{}.Regs)) // Regs first
	_               = uint(abi.PerCPUFastCtx - cpuFastCtx)             // abi's offset is the field's
	_               = uint(cpuFastCtx - abi.PerCPUFastCtx)
	appContextBytes = unsafe.Sizeof(abi.AppContext{})

	// Lengths of the switch code, checked by test/tier0check: each ends with its
	// function's last instruction.
	tier1EnterLen    = 134
	appExitLen       = 128
	appExitCommitLen = 56
)

// switchCodePCs returns where the switch code starts (fastswitch_amd64.s); none of it is
// called from Go.
func switchCodePCs() (hook, enter, exit, commit uint64)

var (
	tier1HookPC, tier1EnterPC, appExitPC, appExitCommitPC uint64

	// tier1HookBack is the instruction after tier 1's rewritten site: where tier1Hook
	// returns, and where tier 1 resumes when it left by tier1Hook.
	tier1HookBack uint64
	// fastSwitch is set once tier 1's site is rewritten: contexts then carry where tier 1
	// resumes, and vCPU blocks their thread's context.
	fastSwitch bool
)

// tier1SiteCode is what tier 1's site holds before it is rewritten: the last two
// instructions of abi.FastCallPatterns[0].
var tier1SiteCode = [5]byte{0x48, 0x89, 0xdf, 0x0f, 0x05} // MOVQ BX, DI; SYSCALL

// patchTier1Site rewrites tier 1's system-call site (BootInfo.Tier1SyscallSite, which the
// monitor found) into a jump to tier1Hook, and offers appExit to the app's sites. Before
// tier 1 runs, so no thread is inside the bytes it changes. A site the monitor did not
// find, or whose bytes are not the expected ones, is left alone: every switch then traps.
//
//go:nosplit
func patchTier1Site() {
	bi := info()
	site := bi.Tier1SyscallSite
	tier1HookPC, tier1EnterPC, appExitPC, appExitCommitPC = switchCodePCs()
	hook := tier1HookPC
	if site < abi.PhysBase+abi.KernelBase || site+5 > abi.PhysBase+bi.KernelEnd || vectorMode == vectorNone {
		return
	}
	code := (*[5]byte)(x86.Pointer(uintptr(site)))
	if *code != tier1SiteCode {
		return
	}
	rel := int64(hook - (site + 5))
	if rel != int64(int32(rel)) {
		return
	}
	tier1HookBack = site + 5
	code[0] = 0xe9 // JMP rel32
	code[1], code[2], code[3], code[4] = byte(rel), byte(rel>>8), byte(rel>>16), byte(rel>>24)
	fastSwitch = true
	bi.AppExit = appExitPC
}

// inCode reports whether pc is within n bytes from start.
//
//go:nosplit
func inCode(pc, start, n uint64) bool { return pc-start < n }

// fastContext is thread t's AppContext for switches without a trap, or nil.
//
//go:nosplit
func fastContext(t *thread) *abi.AppContext {
	if t.fastCtx == 0 || !mapped(t.fastCtx, appContextBytes) {
		return nil
	}
	return (*abi.AppContext)(x86.Pointer(t.fastCtx))
}

// resumeTier1 sets thread t to resume tier 1 where context c says, with RUN_APP
// answering 0.
//
//go:nosplit
func resumeTier1(t *thread, c *abi.AppContext) {
	setTier1Regs(&t.regs, c)
	t.fsbase = c.Tier1FS
}

// setTier1Regs sets r to tier 1's registers as context c has them. The others are
// clobbered, as Go's ABI allows across the call; what the entry recorded of itself
// (Vector, ErrorCode) stays. (Field by field: a composite literal would take a
// temporary on the nosplit stack.)
//
//go:nosplit
func setTier1Regs(r *abi.Regs, c *abi.AppContext) {
	zeroBytes(uintptr(unsafe.Pointer(r)), unsafe.Offsetof(r.Vector))
	r.RIP, r.RSP, r.RBP, r.R14 = c.Tier1RIP, c.Tier1RSP, c.Tier1RBP, c.Tier1R14
	r.CS, r.SS, r.RFLAGS = abi.SelUserCode, abi.SelUserData, initialRFLAGS
}

// syncApp brings tier 0's view of thread t, whose registers are saved, in line with what
// it runs: the app or tier 1, either of which may have switched to the other without a
// trap since tier 0 last saw the thread. Called on every entry that acts on a thread.
//
//go:nosplit
func syncApp(t *thread) {
	c := fastContext(t)
	if c == nil {
		return
	}
	rip := t.regs.RIP
	switch {
	case inCode(rip, tier1EnterPC, tier1EnterLen):
		// Entering the app: it has not started; back to tier 1, which looks again.
		resumeTier1(t, c)
		c.Active, c.Kicked, c.Reason = 0, 0, abi.AppKicked
		t.kicked = false
	case inCode(rip, appExitPC, appExitLen):
		// Leaving the app, nothing committed: it makes its call with a trap instead.
		t.regs.RIP = c.Regs.RIP - 2
	case inCode(rip, appExitCommitPC, appExitCommitLen):
		c.Active = 0
		resumeTier1(t, c)
	}
	app := c.Active != 0
	if app == (t.app != 0) {
		return
	}
	if app {
		// Tier 1 entered the app by tier1Enter: take the vector state over as RUN_APP
		// would have (where tier 1 resumes, leaveApp reads from the context).
		xs := uintptr(c.XSave)
		if xs&63 != 0 || !mapped(xs, xsaveAreaSize) {
			badState(c.XSave) // tier 1 checked it at its first RUN_APP
		}
		t.tier1XSave = t.xsave
		copyBytes(xs, t.xsave, vectorBytes) // the entry saved the app's vector state as tier 1's
		cleanVectorArea(t.tier1XSave)       // tier 1 waits at a call: nothing of it is live
		t.xsave = xs
		t.app = t.fastCtx
		return
	}
	// The app left by appExit: tier 1 runs, and the entry saved its vector state as the
	// app's. The app's own is not needed: it left at a function call. A kick stays: it
	// may be for tier 1's next RUN_APP.
	copyBytes(t.tier1XSave, t.xsave, vectorBytes)
	cleanVectorArea(t.xsave)
	t.xsave = t.tier1XSave
	t.app = 0
}

// cleanVectorArea makes the XSAVE (or FXSAVE) area at xs hold what a thread has after a
// Go function call: nothing in the vector registers (Go wants X15 zero), the default
// control words. In the XSAVE header every component is then in its initial state.
//
//go:nosplit
func cleanVectorArea(xs uintptr) {
	zeroBytes(xs, 576)
	*(*uint16)(x86.Pointer(xs)) = defaultFCW
	*(*uint32)(x86.Pointer(xs + xsaveMXCSR)) = defaultMXCSR
}
