#include "textflag.h"

// func cloneHolder(stack, rfd, keep uintptr) (pid int64)
//
// clone(CLONE_VM) with no exit signal: a process sharing this one's memory, on its own
// stack, which closes every descriptor but rfd and those in the keep mask (bit n: keep n;
// all below 64), waits for EOF on rfd, then exits. All of it is here: it must not run a
// line of Go (it would share the runtime's state).
TEXT ·cloneHolder(SB),NOSPLIT,$0-32
	MOVQ	stack+0(FP), SI
	MOVQ	rfd+8(FP), R12
	MOVQ	keep+16(FP), R13
	MOVQ	$0x100, DI	// CLONE_VM; exit signal 0: no SIGCHLD for anyone
	MOVQ	$0, DX
	MOVQ	$0, R10
	MOVQ	$0, R8
	MOVQ	$56, AX	// SYS_clone
	SYSCALL
	CMPQ	AX, $0
	JEQ	child
	MOVQ	AX, pid+24(FP)
	RET
child:
	MOVQ	$0, R14	// each descriptor below 64 not kept
close:
	BTQ	R14, R13
	JCS	next
	MOVQ	$3, AX	// close(R14)
	MOVQ	R14, DI
	SYSCALL
next:
	INCQ	R14
	CMPQ	R14, $64
	JLT	close
	MOVQ	$436, AX	// close_range(64, ~0, 0)
	MOVQ	$64, DI
	MOVL	$0xffffffff, SI
	MOVQ	$0, DX
	SYSCALL
	TESTQ	AX, AX
	JNE	exit
wait:
	MOVQ	$0, AX	// read(rfd, buf below the stack top, 1)
	MOVQ	R12, DI
	LEAQ	-64(SP), SI
	MOVQ	$1, DX
	SYSCALL
	CMPQ	AX, $-4	// EINTR
	JEQ	wait
exit:
	MOVQ	$60, AX	// exit: the holder has one thread
	MOVQ	$0, DI
	SYSCALL
	JMP	exit
