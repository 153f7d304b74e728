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
