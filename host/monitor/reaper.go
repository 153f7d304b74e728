package monitor

import (
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// deferTeardown is holdVM's fallback: it hands the VM to a small reaper process so that
// pith can exit without waiting for KVM to destroy it: on kvm-pvm that takes 9-12 ms (measured,
// docs/boot-time.md), longer than the whole boot. The reaper holds the VM and vCPU file
// descriptors until pith's end closes the pipe on its standard input; the VM is destroyed
// when the reaper exits. It reports whether the hand-off happened.
func deferTeardown(fds ...int) bool {
	r, w, err := os.Pipe()
	if err != nil {
		return false
	}
	defer r.Close()
	files := []uintptr{r.Fd(), devNull(), devNull()}
	for _, fd := range fds {
		files = append(files, uintptr(fd))
	}
	pid, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", "read _"}, &syscall.ProcAttr{
		Files: files,
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		w.Close()
		return false
	}
	lowPriority(pid)
	reaperPipe = w // closed by the process's exit
	return true
}

// reaperPipe keeps the write end of the reaper's pipe open until pith exits.
var reaperPipe *os.File

var null *os.File

func devNull() uintptr {
	if null == nil {
		null, _ = os.Open(os.DevNull)
	}
	if null == nil {
		return 0
	}
	return null.Fd()
}

// holdVM starts a process that shares pith's memory (clone with CLONE_VM) and holds the
// VM's and vCPUs' descriptors (fds, all below 64), and lives until pith has exited, so
// that tearing the VM down happens after pith's parent has seen it exit: unmapping guest
// memory makes KVM drop its whole shadow MMU (~0.9 ms of a Go hello here, in
// kvm_mmu_notifier_release) and destroying the VM takes 9-12 ms on kvm-pvm; the last
// process holding each pays it, and that is now the holder. It closes every other
// descriptor, keeping its end of a pipe, which reads EOF when pith's end closes as pith
// exits, and runs with every signal blocked. It reports whether the hand-off happened.
func holdVM(fds ...int) bool {
	var p [2]int
	if unix.Pipe2(p[:], unix.O_CLOEXEC) != nil {
		return false
	}
	var keep uint64
	for _, fd := range append(fds, p[0]) {
		if fd < 0 || fd >= 64 {
			unix.Close(p[0])
			unix.Close(p[1])
			return false
		}
		keep |= 1 << fd
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var all, old unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^uint64(0)
	}
	unix.PthreadSigmask(unix.SIG_SETMASK, &all, &old) // the holder starts with this mask
	pid := cloneHolder(uintptr(unsafe.Pointer(&holderStack[len(holderStack)-16])), uintptr(p[0]), uintptr(keep))
	unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	unix.Close(p[0])
	if pid <= 0 {
		unix.Close(p[1])
		return false
	}
	lowPriority(int(pid))
	holderPipe = p[1] // closed by pith's exit
	return true
}

func cloneHolder(stack, rfd, keep uintptr) (pid int64)

// holderStack is the holder's stack: memory the Go runtime never moves or reuses.
var holderStack [4096]byte

var holderPipe int

// lowPriority makes a teardown process nice 19: on a host with few CPUs, the 1-12 ms of
// teardown work at pith's exit otherwise delays whatever runs next, starting with pith's
// parent waking up to its exit (0.89 -> 0.65 ms from the end of the run to the parent,
// medians of 40 interleaved runs; SCHED_IDLE did no better, and could starve it).
func lowPriority(pid int) {
	unix.Setpriority(unix.PRIO_PROCESS, pid, 19)
}
