package kernel

import (
	"syscall"

	"github.com/pithvm/pith/abi"
)

// A private mapping of a file the monitor may map (one the guest cannot change: a root
// filesystem's shared libraries) is the file's own pages, not a copy: the monitor maps
// the file privately into the guest's file window (abi.FileMapWindow), and tier 0 points
// the app's page tables there (abi.SysPithMapWindow). Every guest running the same
// libraries reads them from the host's page cache, and a write (a relocation) copies that
// page for this guest only. Each mmap gets window addresses of its own, as two private
// mappings of one file are independent; they are given back once the app maps none of
// their pages any more, so tier 1 sees every munmap while the app has any.

// window is one file window mapping and what the app still maps of it.
type window struct {
	gpa    uint64
	pieces []vaSpan // the app's addresses still mapped to it
}

type vaSpan struct{ start, end uint64 }

// mapWindow maps n bytes of f (what it holds from offset a[5], n > 0) for mmap's
// arguments a through the file window. ok is false where the monitor maps no window for
// it (a static app, a file in the writable layer, a full window): the caller copies.
func (p *Process) mapWindow(t *Task, a [6]uint64, f *file, n uint64) (addr int64, ok bool) {
	n = pageUp(n)
	gpa := fileRequest(&abi.FileRequest{Op: abi.FileMapWindow, Handle: f.handle, Offset: a[5], Len: n})
	if gpa < 0 {
		return 0, false
	}
	unmapWindow := func() { fileRequest(&abi.FileRequest{Op: abi.FileUnmapWindow, Offset: uint64(gpa)}) }
	const mapAnonymous = 0x20
	addr = passThrough(syscall.SYS_MMAP)(t, [6]uint64{a[0], a[1], a[2],
		a[3]&^syscall.MAP_SHARED | syscall.MAP_PRIVATE | mapAnonymous, ^uint64(0), 0})
	if addr < 0 {
		unmapWindow()
		return addr, true
	}
	if a[3]&syscall.MAP_FIXED != 0 {
		p.dropWindows(uint64(addr), uint64(addr)+pageUp(a[1]))
	}
	if _, _, e := syscall.RawSyscall(abi.SysPithMapWindow, uintptr(addr), uintptr(n), uintptr(gpa)); e != 0 {
		passThrough(syscall.SYS_MUNMAP)(t, [6]uint64{uint64(addr), a[1]})
		unmapWindow()
		return 0, false
	}
	p.mu.Lock()
	p.windows = append(p.windows, &window{gpa: uint64(gpa), pieces: []vaSpan{{uint64(addr), uint64(addr) + n}}})
	p.routeUnmapsLocked()
	p.mu.Unlock()
	return addr, true
}

// dropWindows records that the app no longer maps [lo, hi) (munmap, or a mapping put
// over it), and gives back the window mappings it mapped last.
func (p *Process) dropWindows(lo, hi uint64) {
	p.mu.Lock()
	var gone []uint64
	kept := p.windows[:0]
	for _, w := range p.windows {
		w.pieces = cutSpans(w.pieces, lo, hi)
		if len(w.pieces) == 0 {
			gone = append(gone, w.gpa)
			continue
		}
		kept = append(kept, w)
	}
	clear(p.windows[len(kept):])
	p.windows = kept
	if len(gone) > 0 {
		p.routeUnmapsLocked()
	}
	p.mu.Unlock()
	// Tier 0 has unmapped the range and flushed this vCPU's TLB; the others' have no
	// entries the app can use there (it unmapped them).
	for _, gpa := range gone {
		fileRequest(&abi.FileRequest{Op: abi.FileUnmapWindow, Offset: gpa})
	}
}

// cutSpans removes [lo, hi) from spans.
func cutSpans(spans []vaSpan, lo, hi uint64) []vaSpan {
	var kept []vaSpan
	for _, s := range spans {
		if hi <= s.start || lo >= s.end {
			kept = append(kept, s)
			continue
		}
		if s.start < lo {
			kept = append(kept, vaSpan{s.start, lo})
		}
		if hi < s.end {
			kept = append(kept, vaSpan{hi, s.end})
		}
	}
	return kept
}

// routeUnmapsLocked has tier 0 hand the app's munmap (and mmap over existing mappings)
// to tier 1 while it has shared file mappings to write back or window mappings to give
// back, and serve them itself otherwise. p.mu is held.
func (p *Process) routeUnmapsLocked() {
	on := uintptr(0)
	if len(p.sharedMaps)+len(p.windows) > 0 {
		on = 1
	}
	syscall.RawSyscall(abi.SysPithUnmapToTier1, on, 0, 0)
}
