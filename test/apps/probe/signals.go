package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

// SIGUSR1 to itself through signal.Notify.
func signalSelf() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR1)
	syscall.Kill(syscall.Getpid(), syscall.SIGUSR1)
	fmt.Println("got", <-c)
}

// Wait for SIGINT or SIGTERM and shut down cleanly.
func notify() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	fmt.Println("ready")
	fmt.Println("got", <-c)
}

// SIGTERM to itself, not caught: the app dies by it.
func killSelf() {
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	time.Sleep(time.Second)
}

// SIGTSTP to itself, not caught: Linux stops the process; pith, which has no job
// control, carries on.
func stopSelf() {
	syscall.Kill(syscall.Getpid(), syscall.SIGTSTP)
	fmt.Println("carried on")
}

// A started program's end raises SIGCHLD in its parent.
func sigchld() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGCHLD)
	self, _ := os.Executable()
	exec.Command(self, "exit", "0").Run()
	select {
	case s := <-c:
		fmt.Println("got", s)
	case <-time.After(5 * time.Second):
		fmt.Println("no SIGCHLD")
	}
}

// Signals pending on a thread that blocks them, whose action then becomes one that
// ignores them (SIG_IGN; SIG_DFL of SIGCHLD), are discarded, not delivered.
func ignorePending() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGUSR1)
	runtime.LockOSThread()
	set := uint64(1<<(syscall.SIGUSR1-1) | 1<<(syscall.SIGCHLD-1))
	mask := func(how uintptr) {
		syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, how, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0)
	}
	mask(0) // SIG_BLOCK
	syscall.Tgkill(syscall.Getpid(), syscall.Gettid(), syscall.SIGUSR1)
	syscall.Tgkill(syscall.Getpid(), syscall.Gettid(), syscall.SIGCHLD)
	signal.Ignore(syscall.SIGUSR1)
	var dfl [4]uint64 // struct sigaction: SIG_DFL
	syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(syscall.SIGCHLD), uintptr(unsafe.Pointer(&dfl[0])), 0, 8, 0, 0)
	mask(1) // SIG_UNBLOCK
	time.Sleep(10 * time.Millisecond)
	fmt.Println("survived")
}

// A SIGTSTP pending while blocked stays pending across SIG_DFL (Linux discards
// only signals it ignores by default), for a handler installed before unblocking.
func tstpPending() {
	runtime.LockOSThread()
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTSTP)
	set := uint64(1 << (syscall.SIGTSTP - 1))
	syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, 0, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0)
	syscall.Tgkill(syscall.Getpid(), syscall.Gettid(), syscall.SIGTSTP)
	var dfl, handler [4]uint64
	syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(syscall.SIGTSTP), uintptr(unsafe.Pointer(&dfl[0])), uintptr(unsafe.Pointer(&handler[0])), 8, 0, 0)
	syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(syscall.SIGTSTP), uintptr(unsafe.Pointer(&handler[0])), 0, 8, 0, 0)
	syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, 1, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0)
	select {
	case s := <-c:
		fmt.Println("got", s)
	case <-time.After(time.Second):
		fmt.Println("lost")
	}
}

// A thread blocked in a system call is sent signals; its call ends with EINTR (or
// restarts) and the thread goes on where it was.
func eintr() {
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, syscall.SIGUSR1)
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil {
		fmt.Println(err)
		return
	}
	tids := make(chan int)
	got := make(chan string)
	go func() {
		runtime.LockOSThread()
		tids <- syscall.Gettid()
		buf := make([]byte, 16)
		for {
			n, err := syscall.Read(p[0], buf)
			if err == syscall.EINTR {
				continue
			}
			got <- fmt.Sprintf("%q %v", buf[:n], err)
			return
		}
	}()
	tid := <-tids
	for i := 0; i < 20; i++ {
		time.Sleep(2 * time.Millisecond)
		syscall.Tgkill(syscall.Getpid(), tid, syscall.SIGUSR1)
	}
	time.Sleep(2 * time.Millisecond)
	syscall.Write(p[1], []byte("hello"))
	fmt.Println("read", <-got)
}
