package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
)

// Each argument, numbered and quoted.
func args() {
	for i, a := range os.Args {
		fmt.Printf("%d=%q\n", i, a)
	}
}

// The value of the environment variable named by the argument.
func env() {
	fmt.Println(os.Getenv(os.Args[2]))
}

// Exit with the status given as the argument.
func exitWith() {
	code, _ := strconv.Atoi(os.Args[2])
	os.Exit(code)
}

// An unrecovered Go panic.
func panicMode() {
	panic("probe panics")
}

// A line to stdout, then one to stderr.
func stderr() {
	fmt.Fprintln(os.Stdout, "to stdout")
	fmt.Fprintln(os.Stderr, "to stderr")
}

// A nil dereference the app recovers from: the fault must become a Go panic.
func nilDeref() {
	defer func() {
		if r := recover(); r != nil {
			fmt.Println("recovered:", r)
		}
	}()
	var p *[8]int
	p[3] = 1
}

// Stdin copied to stdout.
func cat() {
	io.Copy(os.Stdout, os.Stdin)
}

// The identity calls, through both of Go's system-call functions (the syscall
// package's and the runtime's): pith rewrites both.
func ids() {
	raw := func(nr uintptr) uintptr { r, _, _ := syscall.RawSyscall(nr, 0, 0, 0); return r }
	fmt.Println(syscall.Getpid(), syscall.Getppid(), syscall.Getuid(), syscall.Geteuid(), syscall.Getgid(), syscall.Getegid())
	fmt.Println(raw(syscall.SYS_GETPID), raw(syscall.SYS_GETPPID), raw(syscall.SYS_GETUID),
		raw(syscall.SYS_GETEUID), raw(syscall.SYS_GETGID), raw(syscall.SYS_GETEGID))
}

// Identity calls, as many pairs as the argument says, through both of Go's system-call
// functions.
func idLoop() {
	n, _ := strconv.Atoi(os.Args[2])
	for i := 0; i < n; i++ {
		syscall.Getppid()
		syscall.RawSyscall(syscall.SYS_GETPID, 0, 0, 0)
	}
}

// hog keeps N MiB (its argument), written to, and says so: more than its memory makes it
// run out.
func hog() {
	n, _ := strconv.Atoi(os.Args[2])
	var kept [][]byte
	for range n {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		kept = append(kept, b)
	}
	fmt.Println("kept", len(kept), "MiB")
}
