#include "textflag.h"

// func cpuid1EDX() uint32
TEXT ·cpuid1EDX(SB),NOSPLIT,$0-4
	MOVL $1, AX
	XORL CX, CX
	CPUID
	MOVL DX, ret+0(FP)
	RET

// func appPtr(a uint64) unsafe.Pointer
TEXT ·appPtr(SB),NOSPLIT,$0-16
	MOVQ a+0(FP), AX
	MOVQ AX, ret+8(FP)
	RET

// func xcr0() uint64
TEXT ·xcr0(SB),NOSPLIT,$0-8
	MOVL $1, AX
	XORL CX, CX
	CPUID
	BTL $27, CX // OSXSAVE: XGETBV is allowed
	JCC none
	XORL CX, CX
	XGETBV
	SHLQ $32, DX
	ORQ DX, AX
	MOVQ AX, ret+0(FP)
	RET
none:
	MOVQ $0, ret+0(FP)
	RET
