package main

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"unsafe"
)

func init() { modes["forkids"] = forkIDs } // fork(2) is amd64's: arm64 has clone only

// forkIDs forks without exec, as a C program does, and the child sends back what getpid
// and getppid answer it through both of Go's system-call functions: fork's answer to the
// parent, and the parent's own. The child makes raw system calls only: it has one thread.
func forkIDs() {
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil {
		fmt.Println("pipe:", err)
		os.Exit(1)
	}
	pid, _, e := syscall.RawSyscall(syscall.SYS_FORK, 0, 0, 0)
	if e != 0 {
		fmt.Println("fork:", e)
		os.Exit(1)
	}
	if pid == 0 {
		var ids [4]uintptr
		ids[0] = uintptr(syscall.Getpid())
		ids[1], _, _ = syscall.RawSyscall(syscall.SYS_GETPID, 0, 0, 0)
		ids[2] = uintptr(syscall.Getppid())
		ids[3], _, _ = syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
		syscall.RawSyscall(syscall.SYS_WRITE, uintptr(p[1]), uintptr(unsafe.Pointer(&ids[0])), unsafe.Sizeof(ids))
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
	}
	syscall.Close(p[1])
	var ids [4]uintptr
	_, err := io.ReadFull(os.NewFile(uintptr(p[0]), "from the child"), unsafe.Slice((*byte)(unsafe.Pointer(&ids[0])), unsafe.Sizeof(ids)))
	var ws syscall.WaitStatus
	syscall.Wait4(int(pid), &ws, 0, nil)
	me := uintptr(syscall.Getpid())
	fmt.Println("child's getpid is fork's answer:", ids[0] == pid && ids[1] == pid, "getppid is its parent:", ids[2] == me && ids[3] == me, err, ws.ExitStatus())
}
