// Tier-0 entry and exit paths: boot, SYSCALL, exceptions and interrupts, the return to a
// thread, and idling. Register state of the interrupted thread is pushed straight into its
// thread record (abi.Regs layout), so a blocked thread needs no tier-0 stack.

#include "textflag.h"
#include "go_asm.h"

#define MSR_PVM_SHARED 0x4b564d10
#define MSR_X2APIC_EOI 0x80b

// PUSH_GPRS saves the general registers so that, pushed downwards from the end of the GPR
// block of abi.Regs, each lands in its field (RAX highest, R15 at offset 0).
#define PUSH_GPRS \
	PUSHQ AX; PUSHQ CX; PUSHQ DX; PUSHQ BX; PUSHQ BP; PUSHQ SI; PUSHQ DI; \
	PUSHQ R8; PUSHQ R9; PUSHQ R10; PUSHQ R11; PUSHQ R12; PUSHQ R13; PUSHQ R14; PUSHQ R15

#define POP_GPRS \
	POPQ R15; POPQ R14; POPQ R13; POPQ R12; POPQ R11; POPQ R10; POPQ R9; POPQ R8; \
	POPQ DI; POPQ SI; POPQ BP; POPQ BX; POPQ DX; POPQ CX; POPQ AX

// PERCPU(field) is a field of this vCPU's CPU block, at its fixed address.
#define PERCPU(off) const_perCPUAddr+off

// ENTER_TIER0 runs with the thread's registers saved: it moves to the tier-0 stack, saves
// the FS base (threads set it themselves: fastswitch.go) and the vector state, gives tier-0 Go code an FS base (ABI0 wrappers read g from TLS) and
// takes the tier-0 lock. Clobbers AX, CX, DX, BX.
#define ENTER_TIER0 \
	MOVQ PERCPU(const_cpuKStackTop), SP; \
	MOVB $1, PERCPU(cpu_inTier0); \
	MOVQ PERCPU(cpu_curThread), BX; \
	RDFSBASEQ AX; \
	MOVQ AX, thread_fsbase(BX); \
	CALL ·saveVector(SB); \
	MOVQ $·tier0TLS+8(SB), AX; \
	CALL ·setFSBase(SB); \
	CALL ·enterTier0(SB)

// start is the kernel ELF's entry point (linked with -E). The monitor has built page tables,
// descriptor tables and the boot info; the vCPU is in 64-bit mode at CPL 0. On kvm-pvm
// everything up to the WRMSR runs emulated at ~1M instructions/s, so it comes first.
TEXT ·start(SB),NOSPLIT|NOFRAME,$0
	MOVQ $(const_bootInfoAddr+const_bootInfoFlagsOffset), BX
	TESTQ $const_flagPVM, (BX)
	JZ   stacks
	MOVL $MSR_PVM_SHARED, CX
	MOVQ PERCPU(const_cpuPVMGPA), AX
	MOVQ AX, DX
	SHRQ $32, DX
	WRMSR
stacks:
	MOVQ PERCPU(const_cpuKStackTop), SP
	MOVB $1, PERCPU(cpu_inTier0)
	MOVQ $·tier0TLS+8(SB), AX
	CALL ·setFSBase(SB)
	CMPQ PERCPU(const_cpuIDOff), $0
	JNE  ap
	MOVQ $·vectorTable(SB), AX // keep the table the monitor reads alive in the link
	MOVQ $_rt0_amd64_linux(SB), AX
	MOVQ AX, ·tier1Entry(SB)
	CALL ·boot(SB)
	CALL ·exitTier0(SB)
	JMP  ·resumeThread(SB)
ap:
	CALL ·apStart(SB)
	CALL ·exitTier0(SB)
	JMP  ·resumeThread(SB)

// syscallEntry is LSTAR. SYSCALL left the user RIP in CX and RFLAGS in R11 and masked
// interrupts (FMASK has IF; kvm-pvm clears vif the same way).
TEXT ·syscallEntry(SB),NOSPLIT|NOFRAME,$0
	MOVQ SP, PERCPU(cpu_userSP)
	MOVQ PERCPU(cpu_curThread), SP
	ADDQ $const_regsFrameEnd, SP
	PUSHQ $const_selUserData   // SS
	PUSHQ PERCPU(cpu_userSP)   // RSP
	PUSHQ R11                  // RFLAGS
	PUSHQ $const_selUserCode   // CS
	PUSHQ CX                   // RIP
	PUSHQ $0                   // error code
	PUSHQ $const_vectorSyscall // vector
	PUSH_GPRS
	ENTER_TIER0
	CALL ·handleSyscall(SB)
	CALL ·exitTier0(SB)
	JMP  ·resumeThread(SB)

// trapCommon is reached from a vector stub with [vector, error code, RIP, CS, RFLAGS, RSP,
// SS] on the stack. On kvm-pvm an interrupt that lands in user mode pushes that frame on the
// USER stack (no TSS.RSP0 switch) with CS=0x10/SS=0x18; the CPU block's inTier0 tells them apart.
TEXT ·trapCommon(SB),NOSPLIT|NOFRAME,$0
	CMPB PERCPU(cpu_inTier0), $0
	JNE  kernel
	// From a thread. On hardware (not kvm-pvm, whose frames from user mode say CS 0x10),
	// a frame from CPL 0 here is tier 0 trapped where it took itself to have left: stop
	// at once and name where, rather than save tier 0's state as the thread's.
	TESTB $3, 24(SP)
	JNZ   fromThread
	TESTQ $const_flagPVM, const_bootInfoAddr+const_bootInfoFlagsOffset
	JZ    fault
fromThread:
	// Save the thread's registers and the frame into its record.
	MOVQ SP, PERCPU(cpu_userSP)
	MOVQ PERCPU(cpu_curThread), SP
	ADDQ $const_regsGPREnd, SP
	PUSH_GPRS
	MOVQ PERCPU(cpu_userSP), SI
	MOVQ PERCPU(cpu_curThread), DI
	MOVQ 0(SI), AX;  MOVQ AX, const_regsGPREnd+0(DI)   // vector
	MOVQ 8(SI), AX;  MOVQ AX, const_regsGPREnd+8(DI)   // error code
	MOVQ 16(SI), AX; MOVQ AX, const_regsGPREnd+16(DI)  // RIP
	MOVQ $const_selUserCode, const_regsGPREnd+24(DI)    // CS (normalised: it was a thread)
	MOVQ 32(SI), AX; MOVQ AX, const_regsGPREnd+32(DI)  // RFLAGS
	MOVQ 40(SI), AX; MOVQ AX, const_regsGPREnd+40(DI)  // RSP
	MOVQ $const_selUserData, const_regsGPREnd+48(DI)    // SS
	// Interrupted on the way out, between unmasking and IRETQ: the thread's registers are
	// in place, and its real frame is the one resumeThread left at the top of the stack.
	MOVQ const_regsGPREnd+16(DI), AX
	MOVQ $·iretToUser(SB), CX
	SUBQ CX, AX
	CMPQ AX, $const_iretOffset
	JA   handle
	MOVQ PERCPU(const_cpuKStackTop), SI
	SUBQ $40, SI
	MOVQ 0(SI), AX;  MOVQ AX, const_regsGPREnd+16(DI)
	MOVQ 16(SI), AX; MOVQ AX, const_regsGPREnd+32(DI)
	MOVQ 24(SI), AX; MOVQ AX, const_regsGPREnd+40(DI)
handle:
	ENTER_TIER0
	CALL ·handleTrap(SB)
	CALL ·exitTier0(SB)
	JMP  ·resumeThread(SB)
kernel:
	// Inside tier 0. A timer or wake-up interrupt only records itself (tier 0 runs to
	// completion and looks at the CPU's wakePending before returning to a thread); a
	// spurious one is ignored; anything else is a tier-0 bug.
	CMPQ 0(SP), $const_vectorSpurious
	JEQ  spurious
	CMPQ 0(SP), $const_vectorTimer
	JEQ  wakeup
	CMPQ 0(SP), $const_vectorWakeup
	JNE  fault
wakeup:
	PUSHQ AX; PUSHQ CX; PUSHQ DX
	MOVL $1, PERCPU(cpu_wakePending)
	MOVL $MSR_X2APIC_EOI, CX
	XORL AX, AX
	XORL DX, DX
	WRMSR
	// If it hit the idle sequence before its HLT, skip the HLT: nothing else would wake it.
	MOVQ 40(SP), AX // RIP
	MOVQ $·idle(SB), CX
	SUBQ CX, AX
	CMPQ AX, $const_idleHLTOffset
	JA   noidle
	MOVQ $·idle+const_idleAfterHLT(SB), AX
	MOVQ AX, 40(SP)
noidle:
	POPQ DX; POPQ CX; POPQ AX
spurious:
	ADDQ $16, SP
	IRETQ
fault:
	// Save what we can into the crash record and stop.
	MOVQ SP, PERCPU(cpu_userSP)
	MOVQ $·crashRegs+const_regsGPREnd(SB), SP
	PUSH_GPRS
	MOVQ PERCPU(cpu_userSP), SI
	MOVQ $·crashRegs(SB), DI
	MOVQ 0(SI), AX;  MOVQ AX, const_regsGPREnd+0(DI)
	MOVQ 8(SI), AX;  MOVQ AX, const_regsGPREnd+8(DI)
	MOVQ 16(SI), AX; MOVQ AX, const_regsGPREnd+16(DI)
	MOVQ 24(SI), AX; MOVQ AX, const_regsGPREnd+24(DI)
	MOVQ 32(SI), AX; MOVQ AX, const_regsGPREnd+32(DI)
	MOVQ 40(SI), AX; MOVQ AX, const_regsGPREnd+40(DI)
	MOVQ 48(SI), AX; MOVQ AX, const_regsGPREnd+48(DI)
	MOVQ $·faultStack+const_faultStackSize(SB), SP
	MOVQ $·tier0TLS+8(SB), AX
	CALL ·setFSBase(SB)
	CALL ·tier0Fault(SB)
	HLT
	JMP  -1(PC)

// resumeThread returns to the current thread: vector state, FS base, registers, then
// IRETQ with the thread's frame copied to the top of the tier-0 stack.
TEXT ·resumeThread(SB),NOSPLIT|NOFRAME,$0
	MOVQ PERCPU(cpu_curThread), BX
	CALL ·restoreVector(SB)
	MOVQ PERCPU(cpu_curThread), BX
	MOVQ thread_fsbase(BX), AX
	CALL ·setFSBase(SB)
	MOVQ PERCPU(cpu_curThread), SI
	MOVQ PERCPU(const_cpuKStackTop), DI
	SUBQ $40, DI
	MOVQ const_regsGPREnd+16(SI), AX; MOVQ AX, 0(DI)   // RIP
	MOVQ const_regsGPREnd+24(SI), AX; MOVQ AX, 8(DI)   // CS
	MOVQ const_regsGPREnd+32(SI), AX; MOVQ AX, 16(DI)  // RFLAGS
	MOVQ const_regsGPREnd+40(SI), AX; MOVQ AX, 24(DI)  // RSP
	MOVQ const_regsGPREnd+48(SI), AX; MOVQ AX, 32(DI)  // SS
	MOVQ SI, SP
	POP_GPRS
	MOVQ PERCPU(const_cpuKStackTop), SP
	SUBQ $40, SP
	MOVB $0, PERCPU(cpu_inTier0)
	JMP  ·iretToUser(SB)

// iretToUser unmasks interrupts and returns to the thread. kvm-pvm's emulated IRETQ does
// not set vif, so it is set here; an interrupt arriving before the IRETQ is taken as one
// that interrupted the thread (trapCommon recognises this function's address).
TEXT ·iretToUser(SB),NOSPLIT|NOFRAME,$0
	MOVB $1, const_pvmPageAddr
	IRETQ

// setFSBase sets FS base to AX: WRFSBASE is native (35 cycles) once CR4.FSGSBASE is set,
// where WRMSR would trap (~4 us on kvm-pvm).
TEXT ·setFSBase(SB),NOSPLIT|NOFRAME,$0
	WRFSBASEQ AX
	RET

// saveVector saves the FPU/vector state into thread BX's area. Clobbers AX, DX, CX.
TEXT ·saveVector(SB),NOSPLIT|NOFRAME,$0
	MOVQ thread_xsave(BX), CX
	MOVB ·vectorMode(SB), AX
	CMPB AX, $const_vectorXSAVE
	JNE  fx
	MOVL ·xsaveMask(SB), AX
	MOVL ·xsaveMask+4(SB), DX
	XSAVE64 (CX)
	RET
fx:
	CMPB AX, $const_vectorFXSAVE
	JNE  none
	FXSAVE64 (CX)
none:
	RET

// restoreVector restores thread BX's FPU/vector state. Clobbers AX, DX, CX.
TEXT ·restoreVector(SB),NOSPLIT|NOFRAME,$0
	MOVQ thread_xsave(BX), CX
	MOVB ·vectorMode(SB), AX
	CMPB AX, $const_vectorXSAVE
	JNE  fx
	MOVL ·xsaveMask(SB), AX
	MOVL ·xsaveMask+4(SB), DX
	XRSTOR64 (CX)
	RET
fx:
	CMPB AX, $const_vectorFXSAVE
	JNE  none
	FXRSTOR64 (CX)
none:
	RET

// idle waits for an interrupt with interrupts unmasked. On kvm-pvm STI delivers one that
// is already pending (a plain vif store would leave it waiting for an unrelated trap); an
// interrupt taken before the HLT moves the return address past it (trapCommon).
TEXT ·idle(SB),NOSPLIT|NOFRAME,$0
	MOVB $1, const_pvmPageAddr
	STI
	HLT
	CLI
	MOVB $0, const_pvmPageAddr
	RET

// Small privileged or unsafe operations for tier-0 Go code.

// func rdtsc() uint64
TEXT ·rdtsc(SB),NOSPLIT,$0-8
	RDTSC
	SHLQ $32, DX
	ORQ  DX, AX
	MOVQ AX, ret+0(FP)
	RET

// func wrmsr(msr uint32, value uint64)
TEXT ·wrmsr(SB),NOSPLIT,$0-16
	MOVL msr+0(FP), CX
	MOVQ value+8(FP), AX
	MOVQ AX, DX
	SHRQ $32, DX
	WRMSR
	RET

// func outl(port uint16, value uint32)
TEXT ·outl(SB),NOSPLIT,$0-8
	MOVW port+0(FP), DX
	MOVL value+4(FP), AX
	OUTL
	RET

// func outb(port uint16, value uint8)
TEXT ·outb(SB),NOSPLIT,$0-3
	MOVW port+0(FP), DX
	MOVB value+2(FP), AX
	OUTB
	RET

// func rdrand() (v uint64, ok bool)
TEXT ·rdrand(SB),NOSPLIT,$0-9
	RDRANDQ AX
	SETCS ok+8(FP)
	MOVQ AX, v+0(FP)
	RET

// func readCR2() uint64
TEXT ·readCR2(SB),NOSPLIT,$0-8
	MOVQ CR2, AX
	MOVQ AX, ret+0(FP)
	RET

// func invlpg(va uintptr)
TEXT ·invlpg(SB),NOSPLIT,$0-8
	MOVQ va+0(FP), AX
	INVLPG (AX)
	RET

// func reloadCR3()
TEXT ·reloadCR3(SB),NOSPLIT,$0
	MOVQ CR3, AX
	MOVQ AX, CR3
	RET

// func halt()
TEXT ·halt(SB),NOSPLIT,$0
	HLT
	RET

// func copyBytes(dst, src, n uintptr)
TEXT ·copyBytes(SB),NOSPLIT,$0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	CLD
	REP; MOVSB
	RET

// func zeroBytes(dst, n uintptr)
TEXT ·zeroBytes(SB),NOSPLIT,$0-16
	MOVQ dst+0(FP), DI
	MOVQ n+8(FP), CX
	XORL AX, AX
	CLD
	REP; STOSB
	RET

// vdsoClockGettime is __vdso_clock_gettime(clockid, *timespec), called by tier 1 with the
// C calling convention from the vDSO the monitor builds (host/monitor/boot/vdso.go): a
// clock read without a trap. It computes what sysClockGettime does, from the same
// variables; other clocks fall back to the system call.
TEXT ·vdsoClockGettime(SB),NOSPLIT|NOFRAME,$0
	CMPQ DI, $7
	JA   syscall
	CMPQ DI, $2
	JEQ  syscall
	CMPQ DI, $3
	JEQ  syscall
	RDTSC
	SHLQ $32, DX
	ORQ  DX, AX
	SUBQ ·bootTSC(SB), AX
	MULQ ·nsMult(SB)
	SHRQ $32, DX, AX // nanoseconds = (ticks * nsMult) >> 32
	CMPQ DI, $0
	JEQ  realtime
	CMPQ DI, $5
	JNE  split
realtime:
	ADDQ ·wallBase(SB), AX
split:
	MOVQ $1000000000, CX
	XORL DX, DX
	DIVQ CX
	MOVQ AX, 0(SI)
	MOVQ DX, 8(SI)
	XORL AX, AX
	RET
syscall:
	MOVL $228, AX // clock_gettime
	SYSCALL
	RET

// func pause()
TEXT ·pause(SB),NOSPLIT,$0
	PAUSE
	RET
