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
// the vector state, gives tier-0 Go code an FS base (ABI0 wrappers read g from TLS) and
// takes the tier-0 lock. Clobbers AX, CX, DX, BX.
#define ENTER_TIER0 \
	MOVQ PERCPU(const_cpuKStackTop), SP; \
	MOVB $1, PERCPU(cpu_inTier0); \
	MOVQ PERCPU(cpu_curThread), BX; \
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
	// From a thread: save its registers and the frame into its record.
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

// func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB),NOSPLIT,$0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func rdrand() (v uint64, ok bool)
TEXT ·rdrand(SB),NOSPLIT,$0-9
	RDRANDQ AX
	SETCS ok+8(FP)
	MOVQ AX, v+0(FP)
	RET

// func addr(a uintptr) unsafe.Pointer
TEXT ·addr(SB),NOSPLIT,$0-16
	MOVQ a+0(FP), AX
	MOVQ AX, ret+8(FP)
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

// Exception and interrupt stubs, one per vector: each pushes a zero error code where the
// CPU pushes none, then its vector, so trapCommon sees one frame shape and every report
// names the real vector.
TEXT ·vec0(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $0
	JMP ·trapCommon(SB)

TEXT ·vec1(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $1
	JMP ·trapCommon(SB)

TEXT ·vec2(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $2
	JMP ·trapCommon(SB)

TEXT ·vec3(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $3
	JMP ·trapCommon(SB)

TEXT ·vec4(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $4
	JMP ·trapCommon(SB)

TEXT ·vec5(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $5
	JMP ·trapCommon(SB)

TEXT ·vec6(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $6
	JMP ·trapCommon(SB)

TEXT ·vec7(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $7
	JMP ·trapCommon(SB)

TEXT ·vec8(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $8
	JMP ·trapCommon(SB)

TEXT ·vec9(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $9
	JMP ·trapCommon(SB)

TEXT ·vec10(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $10
	JMP ·trapCommon(SB)

TEXT ·vec11(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $11
	JMP ·trapCommon(SB)

TEXT ·vec12(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $12
	JMP ·trapCommon(SB)

TEXT ·vec13(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $13
	JMP ·trapCommon(SB)

TEXT ·vec14(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $14
	JMP ·trapCommon(SB)

TEXT ·vec15(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $15
	JMP ·trapCommon(SB)

TEXT ·vec16(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $16
	JMP ·trapCommon(SB)

TEXT ·vec17(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $17
	JMP ·trapCommon(SB)

TEXT ·vec18(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $18
	JMP ·trapCommon(SB)

TEXT ·vec19(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $19
	JMP ·trapCommon(SB)

TEXT ·vec20(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $20
	JMP ·trapCommon(SB)

TEXT ·vec21(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $21
	JMP ·trapCommon(SB)

TEXT ·vec22(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $22
	JMP ·trapCommon(SB)

TEXT ·vec23(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $23
	JMP ·trapCommon(SB)

TEXT ·vec24(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $24
	JMP ·trapCommon(SB)

TEXT ·vec25(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $25
	JMP ·trapCommon(SB)

TEXT ·vec26(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $26
	JMP ·trapCommon(SB)

TEXT ·vec27(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $27
	JMP ·trapCommon(SB)

TEXT ·vec28(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $28
	JMP ·trapCommon(SB)

TEXT ·vec29(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $29
	JMP ·trapCommon(SB)

TEXT ·vec30(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $30
	JMP ·trapCommon(SB)

TEXT ·vec31(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $31
	JMP ·trapCommon(SB)

TEXT ·vec32(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $32
	JMP ·trapCommon(SB)

TEXT ·vec33(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $33
	JMP ·trapCommon(SB)

TEXT ·vec34(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $34
	JMP ·trapCommon(SB)

TEXT ·vec35(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $35
	JMP ·trapCommon(SB)

TEXT ·vec36(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $36
	JMP ·trapCommon(SB)

TEXT ·vec37(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $37
	JMP ·trapCommon(SB)

TEXT ·vec38(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $38
	JMP ·trapCommon(SB)

TEXT ·vec39(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $39
	JMP ·trapCommon(SB)

TEXT ·vec40(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $40
	JMP ·trapCommon(SB)

TEXT ·vec41(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $41
	JMP ·trapCommon(SB)

TEXT ·vec42(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $42
	JMP ·trapCommon(SB)

TEXT ·vec43(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $43
	JMP ·trapCommon(SB)

TEXT ·vec44(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $44
	JMP ·trapCommon(SB)

TEXT ·vec45(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $45
	JMP ·trapCommon(SB)

TEXT ·vec46(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $46
	JMP ·trapCommon(SB)

TEXT ·vec47(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $47
	JMP ·trapCommon(SB)

TEXT ·vec48(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $48
	JMP ·trapCommon(SB)

TEXT ·vec49(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $49
	JMP ·trapCommon(SB)

TEXT ·vec50(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $50
	JMP ·trapCommon(SB)

TEXT ·vec51(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $51
	JMP ·trapCommon(SB)

TEXT ·vec52(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $52
	JMP ·trapCommon(SB)

TEXT ·vec53(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $53
	JMP ·trapCommon(SB)

TEXT ·vec54(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $54
	JMP ·trapCommon(SB)

TEXT ·vec55(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $55
	JMP ·trapCommon(SB)

TEXT ·vec56(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $56
	JMP ·trapCommon(SB)

TEXT ·vec57(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $57
	JMP ·trapCommon(SB)

TEXT ·vec58(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $58
	JMP ·trapCommon(SB)

TEXT ·vec59(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $59
	JMP ·trapCommon(SB)

TEXT ·vec60(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $60
	JMP ·trapCommon(SB)

TEXT ·vec61(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $61
	JMP ·trapCommon(SB)

TEXT ·vec62(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $62
	JMP ·trapCommon(SB)

TEXT ·vec63(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $63
	JMP ·trapCommon(SB)

TEXT ·vec64(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $64
	JMP ·trapCommon(SB)

TEXT ·vec65(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $65
	JMP ·trapCommon(SB)

TEXT ·vec66(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $66
	JMP ·trapCommon(SB)

TEXT ·vec67(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $67
	JMP ·trapCommon(SB)

TEXT ·vec68(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $68
	JMP ·trapCommon(SB)

TEXT ·vec69(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $69
	JMP ·trapCommon(SB)

TEXT ·vec70(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $70
	JMP ·trapCommon(SB)

TEXT ·vec71(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $71
	JMP ·trapCommon(SB)

TEXT ·vec72(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $72
	JMP ·trapCommon(SB)

TEXT ·vec73(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $73
	JMP ·trapCommon(SB)

TEXT ·vec74(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $74
	JMP ·trapCommon(SB)

TEXT ·vec75(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $75
	JMP ·trapCommon(SB)

TEXT ·vec76(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $76
	JMP ·trapCommon(SB)

TEXT ·vec77(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $77
	JMP ·trapCommon(SB)

TEXT ·vec78(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $78
	JMP ·trapCommon(SB)

TEXT ·vec79(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $79
	JMP ·trapCommon(SB)

TEXT ·vec80(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $80
	JMP ·trapCommon(SB)

TEXT ·vec81(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $81
	JMP ·trapCommon(SB)

TEXT ·vec82(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $82
	JMP ·trapCommon(SB)

TEXT ·vec83(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $83
	JMP ·trapCommon(SB)

TEXT ·vec84(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $84
	JMP ·trapCommon(SB)

TEXT ·vec85(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $85
	JMP ·trapCommon(SB)

TEXT ·vec86(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $86
	JMP ·trapCommon(SB)

TEXT ·vec87(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $87
	JMP ·trapCommon(SB)

TEXT ·vec88(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $88
	JMP ·trapCommon(SB)

TEXT ·vec89(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $89
	JMP ·trapCommon(SB)

TEXT ·vec90(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $90
	JMP ·trapCommon(SB)

TEXT ·vec91(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $91
	JMP ·trapCommon(SB)

TEXT ·vec92(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $92
	JMP ·trapCommon(SB)

TEXT ·vec93(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $93
	JMP ·trapCommon(SB)

TEXT ·vec94(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $94
	JMP ·trapCommon(SB)

TEXT ·vec95(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $95
	JMP ·trapCommon(SB)

TEXT ·vec96(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $96
	JMP ·trapCommon(SB)

TEXT ·vec97(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $97
	JMP ·trapCommon(SB)

TEXT ·vec98(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $98
	JMP ·trapCommon(SB)

TEXT ·vec99(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $99
	JMP ·trapCommon(SB)

TEXT ·vec100(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $100
	JMP ·trapCommon(SB)

TEXT ·vec101(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $101
	JMP ·trapCommon(SB)

TEXT ·vec102(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $102
	JMP ·trapCommon(SB)

TEXT ·vec103(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $103
	JMP ·trapCommon(SB)

TEXT ·vec104(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $104
	JMP ·trapCommon(SB)

TEXT ·vec105(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $105
	JMP ·trapCommon(SB)

TEXT ·vec106(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $106
	JMP ·trapCommon(SB)

TEXT ·vec107(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $107
	JMP ·trapCommon(SB)

TEXT ·vec108(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $108
	JMP ·trapCommon(SB)

TEXT ·vec109(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $109
	JMP ·trapCommon(SB)

TEXT ·vec110(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $110
	JMP ·trapCommon(SB)

TEXT ·vec111(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $111
	JMP ·trapCommon(SB)

TEXT ·vec112(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $112
	JMP ·trapCommon(SB)

TEXT ·vec113(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $113
	JMP ·trapCommon(SB)

TEXT ·vec114(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $114
	JMP ·trapCommon(SB)

TEXT ·vec115(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $115
	JMP ·trapCommon(SB)

TEXT ·vec116(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $116
	JMP ·trapCommon(SB)

TEXT ·vec117(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $117
	JMP ·trapCommon(SB)

TEXT ·vec118(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $118
	JMP ·trapCommon(SB)

TEXT ·vec119(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $119
	JMP ·trapCommon(SB)

TEXT ·vec120(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $120
	JMP ·trapCommon(SB)

TEXT ·vec121(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $121
	JMP ·trapCommon(SB)

TEXT ·vec122(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $122
	JMP ·trapCommon(SB)

TEXT ·vec123(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $123
	JMP ·trapCommon(SB)

TEXT ·vec124(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $124
	JMP ·trapCommon(SB)

TEXT ·vec125(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $125
	JMP ·trapCommon(SB)

TEXT ·vec126(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $126
	JMP ·trapCommon(SB)

TEXT ·vec127(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $127
	JMP ·trapCommon(SB)

TEXT ·vec128(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $128
	JMP ·trapCommon(SB)

TEXT ·vec129(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $129
	JMP ·trapCommon(SB)

TEXT ·vec130(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $130
	JMP ·trapCommon(SB)

TEXT ·vec131(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $131
	JMP ·trapCommon(SB)

TEXT ·vec132(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $132
	JMP ·trapCommon(SB)

TEXT ·vec133(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $133
	JMP ·trapCommon(SB)

TEXT ·vec134(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $134
	JMP ·trapCommon(SB)

TEXT ·vec135(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $135
	JMP ·trapCommon(SB)

TEXT ·vec136(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $136
	JMP ·trapCommon(SB)

TEXT ·vec137(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $137
	JMP ·trapCommon(SB)

TEXT ·vec138(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $138
	JMP ·trapCommon(SB)

TEXT ·vec139(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $139
	JMP ·trapCommon(SB)

TEXT ·vec140(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $140
	JMP ·trapCommon(SB)

TEXT ·vec141(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $141
	JMP ·trapCommon(SB)

TEXT ·vec142(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $142
	JMP ·trapCommon(SB)

TEXT ·vec143(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $143
	JMP ·trapCommon(SB)

TEXT ·vec144(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $144
	JMP ·trapCommon(SB)

TEXT ·vec145(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $145
	JMP ·trapCommon(SB)

TEXT ·vec146(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $146
	JMP ·trapCommon(SB)

TEXT ·vec147(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $147
	JMP ·trapCommon(SB)

TEXT ·vec148(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $148
	JMP ·trapCommon(SB)

TEXT ·vec149(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $149
	JMP ·trapCommon(SB)

TEXT ·vec150(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $150
	JMP ·trapCommon(SB)

TEXT ·vec151(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $151
	JMP ·trapCommon(SB)

TEXT ·vec152(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $152
	JMP ·trapCommon(SB)

TEXT ·vec153(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $153
	JMP ·trapCommon(SB)

TEXT ·vec154(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $154
	JMP ·trapCommon(SB)

TEXT ·vec155(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $155
	JMP ·trapCommon(SB)

TEXT ·vec156(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $156
	JMP ·trapCommon(SB)

TEXT ·vec157(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $157
	JMP ·trapCommon(SB)

TEXT ·vec158(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $158
	JMP ·trapCommon(SB)

TEXT ·vec159(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $159
	JMP ·trapCommon(SB)

TEXT ·vec160(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $160
	JMP ·trapCommon(SB)

TEXT ·vec161(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $161
	JMP ·trapCommon(SB)

TEXT ·vec162(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $162
	JMP ·trapCommon(SB)

TEXT ·vec163(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $163
	JMP ·trapCommon(SB)

TEXT ·vec164(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $164
	JMP ·trapCommon(SB)

TEXT ·vec165(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $165
	JMP ·trapCommon(SB)

TEXT ·vec166(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $166
	JMP ·trapCommon(SB)

TEXT ·vec167(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $167
	JMP ·trapCommon(SB)

TEXT ·vec168(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $168
	JMP ·trapCommon(SB)

TEXT ·vec169(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $169
	JMP ·trapCommon(SB)

TEXT ·vec170(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $170
	JMP ·trapCommon(SB)

TEXT ·vec171(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $171
	JMP ·trapCommon(SB)

TEXT ·vec172(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $172
	JMP ·trapCommon(SB)

TEXT ·vec173(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $173
	JMP ·trapCommon(SB)

TEXT ·vec174(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $174
	JMP ·trapCommon(SB)

TEXT ·vec175(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $175
	JMP ·trapCommon(SB)

TEXT ·vec176(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $176
	JMP ·trapCommon(SB)

TEXT ·vec177(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $177
	JMP ·trapCommon(SB)

TEXT ·vec178(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $178
	JMP ·trapCommon(SB)

TEXT ·vec179(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $179
	JMP ·trapCommon(SB)

TEXT ·vec180(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $180
	JMP ·trapCommon(SB)

TEXT ·vec181(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $181
	JMP ·trapCommon(SB)

TEXT ·vec182(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $182
	JMP ·trapCommon(SB)

TEXT ·vec183(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $183
	JMP ·trapCommon(SB)

TEXT ·vec184(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $184
	JMP ·trapCommon(SB)

TEXT ·vec185(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $185
	JMP ·trapCommon(SB)

TEXT ·vec186(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $186
	JMP ·trapCommon(SB)

TEXT ·vec187(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $187
	JMP ·trapCommon(SB)

TEXT ·vec188(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $188
	JMP ·trapCommon(SB)

TEXT ·vec189(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $189
	JMP ·trapCommon(SB)

TEXT ·vec190(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $190
	JMP ·trapCommon(SB)

TEXT ·vec191(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $191
	JMP ·trapCommon(SB)

TEXT ·vec192(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $192
	JMP ·trapCommon(SB)

TEXT ·vec193(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $193
	JMP ·trapCommon(SB)

TEXT ·vec194(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $194
	JMP ·trapCommon(SB)

TEXT ·vec195(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $195
	JMP ·trapCommon(SB)

TEXT ·vec196(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $196
	JMP ·trapCommon(SB)

TEXT ·vec197(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $197
	JMP ·trapCommon(SB)

TEXT ·vec198(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $198
	JMP ·trapCommon(SB)

TEXT ·vec199(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $199
	JMP ·trapCommon(SB)

TEXT ·vec200(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $200
	JMP ·trapCommon(SB)

TEXT ·vec201(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $201
	JMP ·trapCommon(SB)

TEXT ·vec202(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $202
	JMP ·trapCommon(SB)

TEXT ·vec203(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $203
	JMP ·trapCommon(SB)

TEXT ·vec204(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $204
	JMP ·trapCommon(SB)

TEXT ·vec205(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $205
	JMP ·trapCommon(SB)

TEXT ·vec206(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $206
	JMP ·trapCommon(SB)

TEXT ·vec207(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $207
	JMP ·trapCommon(SB)

TEXT ·vec208(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $208
	JMP ·trapCommon(SB)

TEXT ·vec209(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $209
	JMP ·trapCommon(SB)

TEXT ·vec210(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $210
	JMP ·trapCommon(SB)

TEXT ·vec211(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $211
	JMP ·trapCommon(SB)

TEXT ·vec212(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $212
	JMP ·trapCommon(SB)

TEXT ·vec213(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $213
	JMP ·trapCommon(SB)

TEXT ·vec214(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $214
	JMP ·trapCommon(SB)

TEXT ·vec215(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $215
	JMP ·trapCommon(SB)

TEXT ·vec216(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $216
	JMP ·trapCommon(SB)

TEXT ·vec217(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $217
	JMP ·trapCommon(SB)

TEXT ·vec218(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $218
	JMP ·trapCommon(SB)

TEXT ·vec219(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $219
	JMP ·trapCommon(SB)

TEXT ·vec220(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $220
	JMP ·trapCommon(SB)

TEXT ·vec221(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $221
	JMP ·trapCommon(SB)

TEXT ·vec222(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $222
	JMP ·trapCommon(SB)

TEXT ·vec223(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $223
	JMP ·trapCommon(SB)

TEXT ·vec224(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $224
	JMP ·trapCommon(SB)

TEXT ·vec225(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $225
	JMP ·trapCommon(SB)

TEXT ·vec226(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $226
	JMP ·trapCommon(SB)

TEXT ·vec227(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $227
	JMP ·trapCommon(SB)

TEXT ·vec228(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $228
	JMP ·trapCommon(SB)

TEXT ·vec229(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $229
	JMP ·trapCommon(SB)

TEXT ·vec230(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $230
	JMP ·trapCommon(SB)

TEXT ·vec231(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $231
	JMP ·trapCommon(SB)

TEXT ·vec232(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $232
	JMP ·trapCommon(SB)

TEXT ·vec233(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $233
	JMP ·trapCommon(SB)

TEXT ·vec234(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $234
	JMP ·trapCommon(SB)

TEXT ·vec235(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $235
	JMP ·trapCommon(SB)

TEXT ·vec236(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $236
	JMP ·trapCommon(SB)

TEXT ·vec237(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $237
	JMP ·trapCommon(SB)

TEXT ·vec238(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $238
	JMP ·trapCommon(SB)

TEXT ·vec239(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $239
	JMP ·trapCommon(SB)

TEXT ·vec240(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $240
	JMP ·trapCommon(SB)

TEXT ·vec241(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $241
	JMP ·trapCommon(SB)

TEXT ·vec242(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $242
	JMP ·trapCommon(SB)

TEXT ·vec243(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $243
	JMP ·trapCommon(SB)

TEXT ·vec244(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $244
	JMP ·trapCommon(SB)

TEXT ·vec245(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $245
	JMP ·trapCommon(SB)

TEXT ·vec246(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $246
	JMP ·trapCommon(SB)

TEXT ·vec247(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $247
	JMP ·trapCommon(SB)

TEXT ·vec248(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $248
	JMP ·trapCommon(SB)

TEXT ·vec249(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $249
	JMP ·trapCommon(SB)

TEXT ·vec250(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $250
	JMP ·trapCommon(SB)

TEXT ·vec251(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $251
	JMP ·trapCommon(SB)

TEXT ·vec252(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $252
	JMP ·trapCommon(SB)

TEXT ·vec253(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $253
	JMP ·trapCommon(SB)

TEXT ·vec254(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $254
	JMP ·trapCommon(SB)

TEXT ·vec255(SB),NOSPLIT|NOFRAME,$0
	PUSHQ $0
	PUSHQ $255
	JMP ·trapCommon(SB)

// vectorTable lists the handler of each of the 256 vectors (the monitor builds the IDT from
// it), then the SYSCALL entry point (LSTAR), the base of the tier-0 stacks (TSS.RSP0),
// __vdso_clock_gettime and the base of the interrupt stacks (TSS.IST1). See abi.VectorTable*.
DATA ·vectorTable+0(SB)/8, $·vec0(SB)
DATA ·vectorTable+8(SB)/8, $·vec1(SB)
DATA ·vectorTable+16(SB)/8, $·vec2(SB)
DATA ·vectorTable+24(SB)/8, $·vec3(SB)
DATA ·vectorTable+32(SB)/8, $·vec4(SB)
DATA ·vectorTable+40(SB)/8, $·vec5(SB)
DATA ·vectorTable+48(SB)/8, $·vec6(SB)
DATA ·vectorTable+56(SB)/8, $·vec7(SB)
DATA ·vectorTable+64(SB)/8, $·vec8(SB)
DATA ·vectorTable+72(SB)/8, $·vec9(SB)
DATA ·vectorTable+80(SB)/8, $·vec10(SB)
DATA ·vectorTable+88(SB)/8, $·vec11(SB)
DATA ·vectorTable+96(SB)/8, $·vec12(SB)
DATA ·vectorTable+104(SB)/8, $·vec13(SB)
DATA ·vectorTable+112(SB)/8, $·vec14(SB)
DATA ·vectorTable+120(SB)/8, $·vec15(SB)
DATA ·vectorTable+128(SB)/8, $·vec16(SB)
DATA ·vectorTable+136(SB)/8, $·vec17(SB)
DATA ·vectorTable+144(SB)/8, $·vec18(SB)
DATA ·vectorTable+152(SB)/8, $·vec19(SB)
DATA ·vectorTable+160(SB)/8, $·vec20(SB)
DATA ·vectorTable+168(SB)/8, $·vec21(SB)
DATA ·vectorTable+176(SB)/8, $·vec22(SB)
DATA ·vectorTable+184(SB)/8, $·vec23(SB)
DATA ·vectorTable+192(SB)/8, $·vec24(SB)
DATA ·vectorTable+200(SB)/8, $·vec25(SB)
DATA ·vectorTable+208(SB)/8, $·vec26(SB)
DATA ·vectorTable+216(SB)/8, $·vec27(SB)
DATA ·vectorTable+224(SB)/8, $·vec28(SB)
DATA ·vectorTable+232(SB)/8, $·vec29(SB)
DATA ·vectorTable+240(SB)/8, $·vec30(SB)
DATA ·vectorTable+248(SB)/8, $·vec31(SB)
DATA ·vectorTable+256(SB)/8, $·vec32(SB)
DATA ·vectorTable+264(SB)/8, $·vec33(SB)
DATA ·vectorTable+272(SB)/8, $·vec34(SB)
DATA ·vectorTable+280(SB)/8, $·vec35(SB)
DATA ·vectorTable+288(SB)/8, $·vec36(SB)
DATA ·vectorTable+296(SB)/8, $·vec37(SB)
DATA ·vectorTable+304(SB)/8, $·vec38(SB)
DATA ·vectorTable+312(SB)/8, $·vec39(SB)
DATA ·vectorTable+320(SB)/8, $·vec40(SB)
DATA ·vectorTable+328(SB)/8, $·vec41(SB)
DATA ·vectorTable+336(SB)/8, $·vec42(SB)
DATA ·vectorTable+344(SB)/8, $·vec43(SB)
DATA ·vectorTable+352(SB)/8, $·vec44(SB)
DATA ·vectorTable+360(SB)/8, $·vec45(SB)
DATA ·vectorTable+368(SB)/8, $·vec46(SB)
DATA ·vectorTable+376(SB)/8, $·vec47(SB)
DATA ·vectorTable+384(SB)/8, $·vec48(SB)
DATA ·vectorTable+392(SB)/8, $·vec49(SB)
DATA ·vectorTable+400(SB)/8, $·vec50(SB)
DATA ·vectorTable+408(SB)/8, $·vec51(SB)
DATA ·vectorTable+416(SB)/8, $·vec52(SB)
DATA ·vectorTable+424(SB)/8, $·vec53(SB)
DATA ·vectorTable+432(SB)/8, $·vec54(SB)
DATA ·vectorTable+440(SB)/8, $·vec55(SB)
DATA ·vectorTable+448(SB)/8, $·vec56(SB)
DATA ·vectorTable+456(SB)/8, $·vec57(SB)
DATA ·vectorTable+464(SB)/8, $·vec58(SB)
DATA ·vectorTable+472(SB)/8, $·vec59(SB)
DATA ·vectorTable+480(SB)/8, $·vec60(SB)
DATA ·vectorTable+488(SB)/8, $·vec61(SB)
DATA ·vectorTable+496(SB)/8, $·vec62(SB)
DATA ·vectorTable+504(SB)/8, $·vec63(SB)
DATA ·vectorTable+512(SB)/8, $·vec64(SB)
DATA ·vectorTable+520(SB)/8, $·vec65(SB)
DATA ·vectorTable+528(SB)/8, $·vec66(SB)
DATA ·vectorTable+536(SB)/8, $·vec67(SB)
DATA ·vectorTable+544(SB)/8, $·vec68(SB)
DATA ·vectorTable+552(SB)/8, $·vec69(SB)
DATA ·vectorTable+560(SB)/8, $·vec70(SB)
DATA ·vectorTable+568(SB)/8, $·vec71(SB)
DATA ·vectorTable+576(SB)/8, $·vec72(SB)
DATA ·vectorTable+584(SB)/8, $·vec73(SB)
DATA ·vectorTable+592(SB)/8, $·vec74(SB)
DATA ·vectorTable+600(SB)/8, $·vec75(SB)
DATA ·vectorTable+608(SB)/8, $·vec76(SB)
DATA ·vectorTable+616(SB)/8, $·vec77(SB)
DATA ·vectorTable+624(SB)/8, $·vec78(SB)
DATA ·vectorTable+632(SB)/8, $·vec79(SB)
DATA ·vectorTable+640(SB)/8, $·vec80(SB)
DATA ·vectorTable+648(SB)/8, $·vec81(SB)
DATA ·vectorTable+656(SB)/8, $·vec82(SB)
DATA ·vectorTable+664(SB)/8, $·vec83(SB)
DATA ·vectorTable+672(SB)/8, $·vec84(SB)
DATA ·vectorTable+680(SB)/8, $·vec85(SB)
DATA ·vectorTable+688(SB)/8, $·vec86(SB)
DATA ·vectorTable+696(SB)/8, $·vec87(SB)
DATA ·vectorTable+704(SB)/8, $·vec88(SB)
DATA ·vectorTable+712(SB)/8, $·vec89(SB)
DATA ·vectorTable+720(SB)/8, $·vec90(SB)
DATA ·vectorTable+728(SB)/8, $·vec91(SB)
DATA ·vectorTable+736(SB)/8, $·vec92(SB)
DATA ·vectorTable+744(SB)/8, $·vec93(SB)
DATA ·vectorTable+752(SB)/8, $·vec94(SB)
DATA ·vectorTable+760(SB)/8, $·vec95(SB)
DATA ·vectorTable+768(SB)/8, $·vec96(SB)
DATA ·vectorTable+776(SB)/8, $·vec97(SB)
DATA ·vectorTable+784(SB)/8, $·vec98(SB)
DATA ·vectorTable+792(SB)/8, $·vec99(SB)
DATA ·vectorTable+800(SB)/8, $·vec100(SB)
DATA ·vectorTable+808(SB)/8, $·vec101(SB)
DATA ·vectorTable+816(SB)/8, $·vec102(SB)
DATA ·vectorTable+824(SB)/8, $·vec103(SB)
DATA ·vectorTable+832(SB)/8, $·vec104(SB)
DATA ·vectorTable+840(SB)/8, $·vec105(SB)
DATA ·vectorTable+848(SB)/8, $·vec106(SB)
DATA ·vectorTable+856(SB)/8, $·vec107(SB)
DATA ·vectorTable+864(SB)/8, $·vec108(SB)
DATA ·vectorTable+872(SB)/8, $·vec109(SB)
DATA ·vectorTable+880(SB)/8, $·vec110(SB)
DATA ·vectorTable+888(SB)/8, $·vec111(SB)
DATA ·vectorTable+896(SB)/8, $·vec112(SB)
DATA ·vectorTable+904(SB)/8, $·vec113(SB)
DATA ·vectorTable+912(SB)/8, $·vec114(SB)
DATA ·vectorTable+920(SB)/8, $·vec115(SB)
DATA ·vectorTable+928(SB)/8, $·vec116(SB)
DATA ·vectorTable+936(SB)/8, $·vec117(SB)
DATA ·vectorTable+944(SB)/8, $·vec118(SB)
DATA ·vectorTable+952(SB)/8, $·vec119(SB)
DATA ·vectorTable+960(SB)/8, $·vec120(SB)
DATA ·vectorTable+968(SB)/8, $·vec121(SB)
DATA ·vectorTable+976(SB)/8, $·vec122(SB)
DATA ·vectorTable+984(SB)/8, $·vec123(SB)
DATA ·vectorTable+992(SB)/8, $·vec124(SB)
DATA ·vectorTable+1000(SB)/8, $·vec125(SB)
DATA ·vectorTable+1008(SB)/8, $·vec126(SB)
DATA ·vectorTable+1016(SB)/8, $·vec127(SB)
DATA ·vectorTable+1024(SB)/8, $·vec128(SB)
DATA ·vectorTable+1032(SB)/8, $·vec129(SB)
DATA ·vectorTable+1040(SB)/8, $·vec130(SB)
DATA ·vectorTable+1048(SB)/8, $·vec131(SB)
DATA ·vectorTable+1056(SB)/8, $·vec132(SB)
DATA ·vectorTable+1064(SB)/8, $·vec133(SB)
DATA ·vectorTable+1072(SB)/8, $·vec134(SB)
DATA ·vectorTable+1080(SB)/8, $·vec135(SB)
DATA ·vectorTable+1088(SB)/8, $·vec136(SB)
DATA ·vectorTable+1096(SB)/8, $·vec137(SB)
DATA ·vectorTable+1104(SB)/8, $·vec138(SB)
DATA ·vectorTable+1112(SB)/8, $·vec139(SB)
DATA ·vectorTable+1120(SB)/8, $·vec140(SB)
DATA ·vectorTable+1128(SB)/8, $·vec141(SB)
DATA ·vectorTable+1136(SB)/8, $·vec142(SB)
DATA ·vectorTable+1144(SB)/8, $·vec143(SB)
DATA ·vectorTable+1152(SB)/8, $·vec144(SB)
DATA ·vectorTable+1160(SB)/8, $·vec145(SB)
DATA ·vectorTable+1168(SB)/8, $·vec146(SB)
DATA ·vectorTable+1176(SB)/8, $·vec147(SB)
DATA ·vectorTable+1184(SB)/8, $·vec148(SB)
DATA ·vectorTable+1192(SB)/8, $·vec149(SB)
DATA ·vectorTable+1200(SB)/8, $·vec150(SB)
DATA ·vectorTable+1208(SB)/8, $·vec151(SB)
DATA ·vectorTable+1216(SB)/8, $·vec152(SB)
DATA ·vectorTable+1224(SB)/8, $·vec153(SB)
DATA ·vectorTable+1232(SB)/8, $·vec154(SB)
DATA ·vectorTable+1240(SB)/8, $·vec155(SB)
DATA ·vectorTable+1248(SB)/8, $·vec156(SB)
DATA ·vectorTable+1256(SB)/8, $·vec157(SB)
DATA ·vectorTable+1264(SB)/8, $·vec158(SB)
DATA ·vectorTable+1272(SB)/8, $·vec159(SB)
DATA ·vectorTable+1280(SB)/8, $·vec160(SB)
DATA ·vectorTable+1288(SB)/8, $·vec161(SB)
DATA ·vectorTable+1296(SB)/8, $·vec162(SB)
DATA ·vectorTable+1304(SB)/8, $·vec163(SB)
DATA ·vectorTable+1312(SB)/8, $·vec164(SB)
DATA ·vectorTable+1320(SB)/8, $·vec165(SB)
DATA ·vectorTable+1328(SB)/8, $·vec166(SB)
DATA ·vectorTable+1336(SB)/8, $·vec167(SB)
DATA ·vectorTable+1344(SB)/8, $·vec168(SB)
DATA ·vectorTable+1352(SB)/8, $·vec169(SB)
DATA ·vectorTable+1360(SB)/8, $·vec170(SB)
DATA ·vectorTable+1368(SB)/8, $·vec171(SB)
DATA ·vectorTable+1376(SB)/8, $·vec172(SB)
DATA ·vectorTable+1384(SB)/8, $·vec173(SB)
DATA ·vectorTable+1392(SB)/8, $·vec174(SB)
DATA ·vectorTable+1400(SB)/8, $·vec175(SB)
DATA ·vectorTable+1408(SB)/8, $·vec176(SB)
DATA ·vectorTable+1416(SB)/8, $·vec177(SB)
DATA ·vectorTable+1424(SB)/8, $·vec178(SB)
DATA ·vectorTable+1432(SB)/8, $·vec179(SB)
DATA ·vectorTable+1440(SB)/8, $·vec180(SB)
DATA ·vectorTable+1448(SB)/8, $·vec181(SB)
DATA ·vectorTable+1456(SB)/8, $·vec182(SB)
DATA ·vectorTable+1464(SB)/8, $·vec183(SB)
DATA ·vectorTable+1472(SB)/8, $·vec184(SB)
DATA ·vectorTable+1480(SB)/8, $·vec185(SB)
DATA ·vectorTable+1488(SB)/8, $·vec186(SB)
DATA ·vectorTable+1496(SB)/8, $·vec187(SB)
DATA ·vectorTable+1504(SB)/8, $·vec188(SB)
DATA ·vectorTable+1512(SB)/8, $·vec189(SB)
DATA ·vectorTable+1520(SB)/8, $·vec190(SB)
DATA ·vectorTable+1528(SB)/8, $·vec191(SB)
DATA ·vectorTable+1536(SB)/8, $·vec192(SB)
DATA ·vectorTable+1544(SB)/8, $·vec193(SB)
DATA ·vectorTable+1552(SB)/8, $·vec194(SB)
DATA ·vectorTable+1560(SB)/8, $·vec195(SB)
DATA ·vectorTable+1568(SB)/8, $·vec196(SB)
DATA ·vectorTable+1576(SB)/8, $·vec197(SB)
DATA ·vectorTable+1584(SB)/8, $·vec198(SB)
DATA ·vectorTable+1592(SB)/8, $·vec199(SB)
DATA ·vectorTable+1600(SB)/8, $·vec200(SB)
DATA ·vectorTable+1608(SB)/8, $·vec201(SB)
DATA ·vectorTable+1616(SB)/8, $·vec202(SB)
DATA ·vectorTable+1624(SB)/8, $·vec203(SB)
DATA ·vectorTable+1632(SB)/8, $·vec204(SB)
DATA ·vectorTable+1640(SB)/8, $·vec205(SB)
DATA ·vectorTable+1648(SB)/8, $·vec206(SB)
DATA ·vectorTable+1656(SB)/8, $·vec207(SB)
DATA ·vectorTable+1664(SB)/8, $·vec208(SB)
DATA ·vectorTable+1672(SB)/8, $·vec209(SB)
DATA ·vectorTable+1680(SB)/8, $·vec210(SB)
DATA ·vectorTable+1688(SB)/8, $·vec211(SB)
DATA ·vectorTable+1696(SB)/8, $·vec212(SB)
DATA ·vectorTable+1704(SB)/8, $·vec213(SB)
DATA ·vectorTable+1712(SB)/8, $·vec214(SB)
DATA ·vectorTable+1720(SB)/8, $·vec215(SB)
DATA ·vectorTable+1728(SB)/8, $·vec216(SB)
DATA ·vectorTable+1736(SB)/8, $·vec217(SB)
DATA ·vectorTable+1744(SB)/8, $·vec218(SB)
DATA ·vectorTable+1752(SB)/8, $·vec219(SB)
DATA ·vectorTable+1760(SB)/8, $·vec220(SB)
DATA ·vectorTable+1768(SB)/8, $·vec221(SB)
DATA ·vectorTable+1776(SB)/8, $·vec222(SB)
DATA ·vectorTable+1784(SB)/8, $·vec223(SB)
DATA ·vectorTable+1792(SB)/8, $·vec224(SB)
DATA ·vectorTable+1800(SB)/8, $·vec225(SB)
DATA ·vectorTable+1808(SB)/8, $·vec226(SB)
DATA ·vectorTable+1816(SB)/8, $·vec227(SB)
DATA ·vectorTable+1824(SB)/8, $·vec228(SB)
DATA ·vectorTable+1832(SB)/8, $·vec229(SB)
DATA ·vectorTable+1840(SB)/8, $·vec230(SB)
DATA ·vectorTable+1848(SB)/8, $·vec231(SB)
DATA ·vectorTable+1856(SB)/8, $·vec232(SB)
DATA ·vectorTable+1864(SB)/8, $·vec233(SB)
DATA ·vectorTable+1872(SB)/8, $·vec234(SB)
DATA ·vectorTable+1880(SB)/8, $·vec235(SB)
DATA ·vectorTable+1888(SB)/8, $·vec236(SB)
DATA ·vectorTable+1896(SB)/8, $·vec237(SB)
DATA ·vectorTable+1904(SB)/8, $·vec238(SB)
DATA ·vectorTable+1912(SB)/8, $·vec239(SB)
DATA ·vectorTable+1920(SB)/8, $·vec240(SB)
DATA ·vectorTable+1928(SB)/8, $·vec241(SB)
DATA ·vectorTable+1936(SB)/8, $·vec242(SB)
DATA ·vectorTable+1944(SB)/8, $·vec243(SB)
DATA ·vectorTable+1952(SB)/8, $·vec244(SB)
DATA ·vectorTable+1960(SB)/8, $·vec245(SB)
DATA ·vectorTable+1968(SB)/8, $·vec246(SB)
DATA ·vectorTable+1976(SB)/8, $·vec247(SB)
DATA ·vectorTable+1984(SB)/8, $·vec248(SB)
DATA ·vectorTable+1992(SB)/8, $·vec249(SB)
DATA ·vectorTable+2000(SB)/8, $·vec250(SB)
DATA ·vectorTable+2008(SB)/8, $·vec251(SB)
DATA ·vectorTable+2016(SB)/8, $·vec252(SB)
DATA ·vectorTable+2024(SB)/8, $·vec253(SB)
DATA ·vectorTable+2032(SB)/8, $·vec254(SB)
DATA ·vectorTable+2040(SB)/8, $·vec255(SB)
DATA ·vectorTable+2048(SB)/8, $·syscallEntry(SB)
DATA ·vectorTable+2056(SB)/8, $·kstacks(SB)
DATA ·vectorTable+2064(SB)/8, $·vdsoClockGettime(SB)
DATA ·vectorTable+2072(SB)/8, $·intrStacks(SB)
GLOBL ·vectorTable(SB), RODATA, $2080

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

// func xgetbv() uint64
TEXT ·xgetbv(SB),NOSPLIT,$0-8
	XORL CX, CX
	XGETBV
	SHLQ $32, DX
	ORQ  DX, AX
	MOVQ AX, ret+0(FP)
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
