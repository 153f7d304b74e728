package kvm

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// An ioctl's answer lands in the caller's variable however deep the stack is when it is
// made: a stack that grows on the way to the system call moves the variable, and the
// kernel must write where it is then (ioctlPtr). TIOCINQ (FIONREAD) on a pipe stands in for
// KVM's calls, which need /dev/kvm.
func TestIoctlAnswerSurvivesStackGrowth(t *testing.T) {
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	unix.Write(p[1], []byte("seven b"))
	done := make(chan int, 1)
	for depth := 0; depth < 400; depth++ {
		go func() { done <- atDepth(depth, p[0]) }() // a fresh goroutine's small stack
		if n := <-done; n != 7 {
			t.Fatalf("TIOCINQ (FIONREAD) at stack depth %d answered %d, want 7", depth, n)
		}
	}
}

// atDepth makes TIOCINQ (FIONREAD) on fd below depth frames of 128 bytes each.
func atDepth(depth, fd int) int {
	var pad [128]byte
	if depth > 0 {
		return atDepth(depth-1, fd) + int(pad[depth%len(pad)])
	}
	var n int32
	if _, err := ioctlPtr(fd, unix.TIOCINQ, unsafe.Pointer(&n)); err != nil {
		return -1
	}
	return int(n)
}
