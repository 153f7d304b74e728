package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

// Memory the app never mapped, handed to system calls: EFAULT, as natively.
func efault() {
	const bad = 0x10000000
	_, _, e1 := syscall.Syscall(syscall.SYS_WRITE, 1, bad, 10)
	_, _, e2 := syscall.Syscall6(syscall.SYS_RT_SIGACTION, uintptr(syscall.SIGUSR2), bad, 0, 8, 0, 0)
	_, _, e3 := syscall.Syscall6(syscall.SYS_RT_SIGACTION, uintptr(syscall.SIGUSR2), 0, bad, 8, 0, 0)
	_, _, e4 := syscall.Syscall(syscall.SYS_OPENAT, ^uintptr(99), bad, 0)
	_, _, e5 := syscall.Syscall(syscall.SYS_UNAME, bad, 0, 0)
	random, _ := syscall.Open("/dev/urandom", syscall.O_RDONLY, 0)
	_, _, e6 := syscall.Syscall(syscall.SYS_READ, uintptr(random), bad, 16)
	const sysTime, sysArchPrctl = 201, 158 // x86-64's (the probe's arm64 build is never run)
	_, _, e7 := syscall.Syscall(sysTime, bad, 0, 0)
	_, _, e8 := syscall.Syscall(syscall.SYS_GETTIMEOFDAY, bad, 0, 0)
	_, _, e9 := syscall.Syscall(syscall.SYS_GETCWD, bad, 4096, 0)
	_, _, e10 := syscall.Syscall(sysArchPrctl, 0x1003, bad, 0) // ARCH_GET_FS
	fmt.Println(e1, e2, e3, e4, e5, e6, e7, e8, e9, e10)
}

// readv fills the buffers in turn and stops at a short read; writev gathers.
func readv() {
	var p [2]int
	syscall.Pipe(p[:])
	a, b := []byte("hello "), []byte("world")
	out := [2]syscall.Iovec{{Base: &a[0], Len: uint64(len(a))}, {Base: &b[0], Len: uint64(len(b))}}
	w, _, we := syscall.Syscall(syscall.SYS_WRITEV, uintptr(p[1]), uintptr(unsafe.Pointer(&out[0])), 2)
	x, y := make([]byte, 4), make([]byte, 20)
	in := [3]syscall.Iovec{{Base: &x[0], Len: 4}, {Base: &y[0], Len: 20}, {Base: &x[0], Len: 4}}
	r, _, re := syscall.Syscall(syscall.SYS_READV, uintptr(p[0]), uintptr(unsafe.Pointer(&in[0])), 3)
	_, _, bad := syscall.Syscall(syscall.SYS_READV, uintptr(p[0]), 0x10000000, 1)
	_, _, many := syscall.Syscall(syscall.SYS_READV, uintptr(p[0]), uintptr(unsafe.Pointer(&in[0])), 1025)
	fmt.Printf("writev %d %v, readv %d %v %q %q, bad iovec: %v, 1025 iovecs: %v\n", w, we, r, re, x, y[:r-4], bad, many)
}

// A thread whose clear_child_tid is memory the app never mapped exits all the same
// (Linux ignores the failed write), and a pipe2 that cannot write its descriptors
// leaves none behind.
func badTID() {
	done := make(chan bool)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		syscall.RawSyscall(syscall.SYS_SET_TID_ADDRESS, 0x10000000, 0, 0)
		done <- true
	}()
	<-done
	time.Sleep(50 * time.Millisecond)
	before, _ := syscall.Open("/dev/null", syscall.O_RDONLY, 0)
	syscall.Close(before)
	_, _, e := syscall.RawSyscall(syscall.SYS_PIPE2, 0x10000000, 0, 0)
	after, _ := syscall.Open("/dev/null", syscall.O_RDONLY, 0)
	fmt.Println("still running; pipe2:", e, "descriptors left behind:", after != before)
}

// Anonymous memory mapped over part of a shared file mapping is not the file's:
// what is written there never reaches the file.
func shmFixed() {
	f, err := os.CreateTemp("", "probe-shm")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.Remove(f.Name())
	f.Truncate(8 << 20)
	f.WriteAt([]byte("A"), 5<<20)
	m, err := syscall.Mmap(int(f.Fd()), 0, 8<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		fmt.Println(err)
		return
	}
	hi := uintptr(unsafe.Pointer(&m[4<<20]))
	_, _, e := syscall.Syscall6(syscall.SYS_MMAP, hi, 4<<20, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_FIXED|syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS, ^uintptr(0), 0)
	m[5<<20] = 'Y'
	m[0] = 'B'
	e2 := syscall.Munmap(m)
	var b [1]byte
	f.ReadAt(b[:], 5<<20)
	var c [1]byte
	f.ReadAt(c[:], 0)
	fmt.Printf("mmap %v munmap %v; at 5 MiB %q, at 0 %q\n", e, e2, b[0], c[0])
}
