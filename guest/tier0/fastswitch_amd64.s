// Switching between tier 1 and the app without a trap (fastswitch.go). This code runs in
// user mode, on the thread's own registers: tier 1's when it enters the app, the app's
// when it leaves. Tier 0 recognises an interrupt that lands inside it by its address
// (syncApp) and moves the thread to one side or the other, so nothing here is ever seen
// half done. Offsets within each function are checked by test/tier0check.

#include "textflag.h"
#include "go_asm.h"

#define PERCPU(off) const_perCPUAddr+off

// LOAD_BP loads the frame pointer of the side being switched to. (go vet takes a write
// to BP in a function without a frame for a bug; here it is the point.)
#define LOAD_BP(src) MOVQ src, BP

// tier1Hook replaces the last two instructions (MOVQ BX, DI; SYSCALL) of the function
// tier 1's Go runtime makes its system calls with. Every call but a RUN_APP that asks for
// it (AppContext.Fast) takes the SYSCALL as before; that one saves where tier 1 resumes
// and enters the app at tier1Enter.
TEXT ·tier1Hook(SB),NOSPLIT|NOFRAME,$0
	MOVQ BX, DI
	CMPQ AX, $const_nrRunApp
	JNE  slow
	CMPQ const_ctxFast(DI), $0
	JEQ  slow
	// Only a context tier 0 knows as this thread's (a RUN_APP with a trap made it so).
	CMPQ DI, PERCPU(const_cpuFastCtx)
	JNE  slow
	// Only with this vCPU's TLB caught up with memory another vCPU unmapped (mm.go's
	// shootdown without IPIs): the trap's entry syncs it, as every call did before.
	MOVQ PERCPU(cpu_tlbGen), R11
	CMPQ R11, ·tlbGen(SB)
	JNE  slow
	MOVQ SP, const_ctxTier1RSP(DI)
	MOVQ BP, const_ctxTier1RBP(DI)
	MOVQ R14, const_ctxTier1R14(DI)
	RDFSBASEQ R11
	MOVQ R11, const_ctxTier1FS(DI)
	MOVQ ·tier1HookBack(SB), R11
	MOVQ R11, const_ctxTier1RIP(DI)
	JMP  ·tier1Enter(SB)
slow:
	SYSCALL
	MOVQ ·tier1HookBack(SB), R11
	JMP  R11

// tier1Enter loads the app's registers from the context in DI and jumps to its RIP: the
// return of a rewritten site, where RCX and R11 are dead (SYSCALL clobbers them) and so
// is the vector state (a Go function call). Interrupted anywhere in here, the thread goes
// back to tier 1 as if kicked (syncApp).
TEXT ·tier1Enter(SB),NOSPLIT|NOFRAME,$0
	CMPQ const_ctxKicked(DI), $0
	JNE  kicked
	MOVQ $1, const_ctxActive(DI)
	MOVQ const_ctxFSBase(DI), R11
	WRFSBASEQ R11
	MOVQ const_regsRAX(DI), AX
	MOVQ const_regsRBX(DI), BX
	MOVQ const_regsRDX(DI), DX
	MOVQ const_regsRSI(DI), SI
	LOAD_BP(const_regsRBP(DI))
	MOVQ const_regsR8(DI), R8
	MOVQ const_regsR9(DI), R9
	MOVQ const_regsR10(DI), R10
	MOVQ const_regsR12(DI), R12
	MOVQ const_regsR13(DI), R13
	MOVQ const_regsR14(DI), R14
	MOVQ const_regsR15(DI), R15
	MOVQ const_regsRSP(DI), SP
	MOVQ const_regsRIP(DI), CX
	MOVQ const_regsRDI(DI), DI
	JMP  CX
kicked:
	MOVQ $0, const_ctxKicked(DI)
	MOVQ $const_appKicked, const_ctxReason(DI)
	XORL AX, AX
	MOVQ ·tier1HookBack(SB), R11
	JMP  R11

// appExit is where a rewritten site of the app jumps, with RCX holding the thread's
// context and its RIP field the site's return: it saves the app's registers there, as
// a trap would, then commits (appExitCommit). Interrupted in here, the thread is the
// app's, at the site's SYSCALL (syncApp).
TEXT ·appExit(SB),NOSPLIT|NOFRAME,$0
	MOVQ AX, const_regsRAX(CX)
	MOVQ BX, const_regsRBX(CX)
	MOVQ DX, const_regsRDX(CX)
	MOVQ SI, const_regsRSI(CX)
	MOVQ DI, const_regsRDI(CX)
	MOVQ BP, const_regsRBP(CX)
	MOVQ R8, const_regsR8(CX)
	MOVQ R9, const_regsR9(CX)
	MOVQ R10, const_regsR10(CX)
	MOVQ R12, const_regsR12(CX)
	MOVQ R13, const_regsR13(CX)
	MOVQ R14, const_regsR14(CX)
	MOVQ R15, const_regsR15(CX)
	MOVQ SP, const_regsRSP(CX)
	MOVQ const_regsRIP(CX), R11
	MOVQ R11, const_regsRCX(CX)
	MOVQ $const_initialRFLAGS, R11
	MOVQ R11, const_regsR11(CX)
	MOVQ R11, const_regsRFLAGS(CX)
	MOVQ $const_vectorSyscall, const_regsVector(CX)
	RDFSBASEQ R11
	MOVQ R11, const_ctxFSBase(CX)
	MOVQ $const_appFastCall, const_ctxReason(CX)
	PXOR X15, X15 // Go's ABI wants it zero in tier 1 as in the app
	JMP  ·appExitCommit(SB)

// appExitCommit makes the context's tier 1 the thread's: from its first instruction on,
// an interrupted thread is tier 1's, resuming where the context says (syncApp).
TEXT ·appExitCommit(SB),NOSPLIT|NOFRAME,$0
	MOVQ $0, const_ctxActive(CX)
	MOVQ const_ctxTier1FS(CX), R11
	WRFSBASEQ R11
	MOVQ const_ctxTier1RSP(CX), SP
	LOAD_BP(const_ctxTier1RBP(CX))
	MOVQ const_ctxTier1R14(CX), R14
	XORL AX, AX
	MOVQ const_ctxTier1RIP(CX), R11
	JMP  R11

// func switchCodePCs() (hook, enter, exit, commit uint64)
TEXT ·switchCodePCs(SB),NOSPLIT,$0-32
	MOVQ $·tier1Hook(SB), AX
	MOVQ AX, hook+0(FP)
	MOVQ $·tier1Enter(SB), AX
	MOVQ AX, enter+8(FP)
	MOVQ $·appExit(SB), AX
	MOVQ AX, exit+16(FP)
	MOVQ $·appExitCommit(SB), AX
	MOVQ AX, commit+24(FP)
	RET
