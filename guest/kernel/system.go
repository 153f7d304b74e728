package kernel

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
	"github.com/pithvm/pith/guest/x86"
)

// bootInfo is the monitor's BootInfo, which tier 1 reads through the kernel's mapping of
// guest-physical memory.
func bootInfo() *abi.BootInfo {
	return (*abi.BootInfo)(x86.Pointer(uintptr(abi.PhysBase + abi.BootInfoAddr)))
}

// memory says how much guest memory there is, and how much of it tier 0 has handed out
// (the app's and tier 1's pages together: the guest has no other user of memory).
func memory() (total, used uint64) {
	bi := bootInfo()
	var s abi.Stats
	syscall.RawSyscall(abi.SysPithStats, uintptr(unsafe.Pointer(&s)), 0, 0)
	return bi.MemSize, min(s.Frames*pageSize, bi.MemSize)
}

// uptime is the time since the guest booted, in nanoseconds.
func uptime() int64 {
	var ts syscall.Timespec
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, 1 /* CLOCK_MONOTONIC */, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano()
}

// sysSysinfo answers sysinfo(2) for the guest: its memory, no swap, one process's
// threads, no load figures.
func sysSysinfo(t *Task, a [6]uint64) int64 {
	total, used := memory()
	t.proc.mu.Lock()
	threads := len(t.proc.tasks)
	t.proc.mu.Unlock()
	info := unix.Sysinfo_t{Uptime: uptime() / 1e9, Totalram: total, Freeram: total - used,
		Procs: uint16(threads), Unit: 1}
	if !putApp(a[0], info) {
		return -linux.EFAULT
	}
	return 0
}
