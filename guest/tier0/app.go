package tier0

import (
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
	"github.com/pithvm/pith/guest/x86"
)

// Running app code. A tier-1 thread calls RUN_APP with an abi.AppContext; tier 0 parks
// tier 1's registers in the thread record and returns to the app's registers instead, on
// the same thread, with no scheduler pass and no exit to the host. When the app makes a
// system call, takes an exception tier 0 does not resolve itself (demand paging it does),
// or is kicked, tier 0 writes the app's state back and completes the RUN_APP call.

// keepRegs is what a system call returns when it has set the thread's registers itself.
const keepRegs = -1 << 63

const appContextSize = unsafe.Sizeof(abi.AppContext{})

// userFlags are the RFLAGS bits an app may set (not IOPL, VM, VIF, ...).
const userFlags = 0x3f7fd5

// sysRunApp implements the private RUN_APP call.
//
//go:nosplit
func sysRunApp(ctx uint64) int64 {
	t := current()
	if t.app != 0 {
		return -linux.EINVAL
	}
	if !mapped(uintptr(ctx), appContextSize) {
		return -linux.EFAULT
	}
	c := (*abi.AppContext)(x86.Pointer(uintptr(ctx)))
	xs := uintptr(c.XSave)
	if xs&63 != 0 || !mapped(xs, xsaveAreaSize) {
		return -linux.EINVAL
	}
	if t.kicked {
		t.kicked = false
		c.Reason = abi.AppKicked
		c.Kicked = 0
		return 0
	}
	*(*uint64)(x86.Pointer(xs + 520)) = 0 // XCOMP_BV: the standard format, or XRSTOR faults
	t.tier1 = t.regs
	t.tier1.RAX = 0 // what RUN_APP returns
	t.tier1FS = t.fsbase
	t.tier1XSave = t.xsave
	t.regs = c.Regs
	t.regs.CS = abi.SelUserCode
	t.regs.SS = abi.SelUserData
	t.regs.RFLAGS = t.regs.RFLAGS&userFlags | 1<<9 | 1<<1
	t.fsbase = c.FSBase
	t.xsave = xs
	t.app = uintptr(ctx)
	if fastSwitch {
		// Where tier 1 resumes should the app leave without a trap (fastswitch.go).
		c.Tier1RIP, c.Tier1RSP, c.Tier1RBP, c.Tier1R14 = t.tier1.RIP, t.tier1.RSP, t.tier1.RBP, t.tier1.R14
		c.Tier1FS = t.tier1FS
		c.Active, c.Kicked = 1, 0
		t.fastCtx = uintptr(ctx)
		thisCPU().hw.FastCtx = ctx
	}
	if !appStarted {
		appStarted = true
		startCPUTime()
	}
	return keepRegs
}

// leaveApp writes the app's state into its context and puts the thread back in tier 1,
// where RUN_APP returns.
//
//go:nosplit
func leaveApp(t *thread, reason, cr2 uint64) {
	if !mapped(t.app, appContextSize) {
		badState(uint64(t.app)) // tier 1 unmapped a context in use
	}
	c := (*abi.AppContext)(x86.Pointer(t.app))
	c.Regs = t.regs
	c.FSBase = t.fsbase
	c.Reason = reason
	c.CR2 = cr2
	c.Active, c.Kicked = 0, 0
	if t.fastCtx != 0 {
		// Tier 1 may have entered the app since without a trap: the context knows where.
		resumeTier1(t, c)
	} else {
		t.regs = t.tier1
		t.fsbase = t.tier1FS
	}
	t.xsave = t.tier1XSave
	t.app = 0
	t.kicked = false
}

// sysKick implements the private KICK call: thread tid leaves app code at its next
// chance (at once if it is blocked in a call tier 1 made for it).
//
//go:nosplit
func sysKick(tid uint64) int64 {
	i := threadByTID(int64(tid))
	if i < 0 {
		return -linux.ESRCH
	}
	t := threadAt(i)
	t.kicked = true
	if c := fastContext(t); c != nil {
		c.Kicked = 1 // for tier1Enter, which takes no trap to learn of it
	}
	switch {
	case t.state == threadBlocked:
		wake(i, -linux.EINTR)
	case t.onCPU >= 0 && t.onCPU != int32(thisCPU().hw.ID):
		sendWakeup(t.onCPU)
	}
	return 0
}

// sysMapApp maps [va, va+n) to the app file's own frames from byte offset off: the
// monitor mapped the file privately into guest memory, so the app runs from the host's
// page cache, and a write only copies that page for this guest. Nothing is copied, and
// each page costs a first touch only if the app uses it.
//
//go:nosplit
func sysMapApp(va, n, off uint64) int64 {
	bi := info()
	if va&(pageSize-1) != 0 || off&(pageSize-1) != 0 || n == 0 {
		return -linux.EINVAL
	}
	n = (n + pageSize - 1) &^ (pageSize - 1)
	end := va + n
	if end < va || va < userFloor || end > abi.UserVAEnd || inPhysmap(va, end) ||
		off+n < off || off+n > (bi.AppSize+pageSize-1)&^(pageSize-1) {
		return -linux.EINVAL
	}
	if overlaps(va, end) {
		return -linux.EEXIST
	}
	if !insertRegion(va, end, protRW) {
		return -linux.ENOMEM
	}
	return mapFrames(va, end, bi.AppAddr+off)
}

// sysMapWindow maps [va, va+n), which tier 1 has just mapped (anonymous, untouched), to
// the file window's frames from guest-physical pa: a file the monitor mapped there
// privately (FileMapWindow), so the app reads a shared library from the host's page
// cache, which every guest shares, and a write copies that page for this guest only.
//
//go:nosplit
func sysMapWindow(va, n, pa uint64) int64 {
	bi := info()
	if va&(pageSize-1) != 0 || pa&(pageSize-1) != 0 || n == 0 {
		return -linux.EINVAL
	}
	n = (n + pageSize - 1) &^ (pageSize - 1)
	end := va + n
	if end < va || va < userFloor || end > abi.UserVAEnd || inPhysmap(va, end) ||
		pa < bi.WindowAddr || pa+n < pa || pa+n > bi.WindowAddr+bi.WindowSize {
		return -linux.EINVAL
	}
	if !covered(va, end) {
		return -linux.ENOMEM
	}
	// Whatever was backed there meanwhile goes first: a fault next to the range backs
	// its 2 MiB block, which may reach into the range.
	unbackRange(va, end)
	return mapFrames(va, end, pa)
}

// mapFrames maps [va, end), where nothing is mapped, to the frames from pa on: 2 MiB
// pages where both are aligned.
//
//go:nosplit
func mapFrames(va, end, pa uint64) int64 {
	for va < end {
		pde := pdeFor(va, true)
		if pde == nil {
			return -linux.ENOMEM
		}
		if va&(hugeSize-1) == 0 && pa&(hugeSize-1) == 0 && va+hugeSize <= end && *pde == 0 {
			setEntry(pde, pa|pteTable|ptePS)
			va, pa = va+hugeSize, pa+hugeSize
			continue
		}
		if *pde&ptePS != 0 {
			return -linux.EEXIST
		}
		if *pde == 0 {
			pt, ok := allocPage()
			if !ok {
				return -linux.ENOMEM
			}
			setEntry(pde, pt|pteTable)
		}
		blockEnd := (va + hugeSize) &^ (hugeSize - 1)
		for ; va < end && va < blockEnd; va, pa = va+pageSize, pa+pageSize {
			*pteAt(*pde, va>>12) = pa | pteTable
		}
	}
	return 0
}

// fileFrame reports whether frame address pa is a file's, the app's or one in the file
// window: never the allocator's.
//
//go:nosplit
func fileFrame(pa uint64) bool {
	bi := info()
	return pa >= bi.AppAddr && pa < bi.AppAddr+bi.AppSize || pa >= bi.WindowAddr && pa < bi.WindowAddr+bi.WindowSize
}

// sysFile hands a FileRequest to the monitor's file service (an exit: ~50 us on kvm-pvm).
// The request and the memory it names must be mapped for the monitor to find them. A
// request without a buffer (Buf 0) may use Len for a size (FileMapWindow's length).
//
//go:nosplit
func sysFile(req uint64) int64 {
	if !mapped(uintptr(req), unsafe.Sizeof(abi.FileRequest{})) {
		return -linux.EFAULT
	}
	r := (*abi.FileRequest)(x86.Pointer(uintptr(req)))
	if r.PathLen > 4096 || r.Len > 1<<30 || !mapped(uintptr(r.Path), uintptr(r.PathLen)) || r.Buf != 0 && !mapped(uintptr(r.Buf), uintptr(r.Len)) {
		return -linux.EFAULT
	}
	info().FileRequest = req
	outl(abi.PortFile, 0)
	return 0
}
