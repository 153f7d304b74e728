package kernel

import (
	"runtime"
	"syscall"
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
)

// sysMmap maps memory; tier 0 serves anonymous mappings itself. A private file mapping
// is the file's pages through the file window where the monitor allows (window.go), else
// a copy of the file's bytes, made when mapped: enough for the programs that map files to
// read them. A shared writable mapping (Go's linker writes its output through one) is
// written back to the file at munmap, msync and exit.
func sysMmap(t *Task, a [6]uint64) int64 {
	const (
		protWrite    = 2
		mapShared    = 1
		mapPrivate   = 2
		mapAnonymous = 0x20
	)
	pass := passThrough(syscall.SYS_MMAP)
	fixed := a[3]&syscall.MAP_FIXED != 0
	if fixed { // what it replaces of a shared mapping leaves it, as munmap
		t.proc.syncShared(a[0], a[0]+a[1], true)
	}
	if a[3]&mapAnonymous != 0 {
		addr := pass(t, a)
		if addr >= 0 {
			if fixed {
				t.proc.dropWindows(uint64(addr), uint64(addr)+pageUp(a[1]))
			}
			t.proc.mapped(mapping{start: uint64(addr), end: uint64(addr) + pageUp(a[1]), prot: a[2], shared: a[3]&mapShared != 0})
		}
		return addr
	}
	f := t.proc.fd(a[4])
	if f == nil {
		return -linux.EBADF
	}
	if f.kind != kindHost {
		return -19 // ENODEV
	}
	if a[5]&0xfff != 0 {
		return -linux.EINVAL
	}
	var st syscall.Stat_t
	if e := hostStat(f.handle, "", &st, false); e != 0 {
		return e
	}
	// Past the file's end the mapping reads as zeros, as on Linux.
	fileLen := uint64(0)
	if uint64(st.Size) > a[5] {
		fileLen = min(a[1], uint64(st.Size)-a[5])
	}
	if a[3]&mapShared == 0 && a[2] != 0 && fileLen > 0 {
		if addr, ok := t.proc.mapWindow(t, a, f, fileLen); ok {
			if addr >= 0 {
				t.proc.mapped(mapping{start: uint64(addr), end: uint64(addr) + pageUp(a[1]), off: a[5], prot: a[2], name: f.path})
			}
			return addr
		}
	}
	var m sharedMapping
	if a[3]&mapShared != 0 && a[2]&protWrite != 0 {
		// Its own handle: the app may close the descriptor before unmapping.
		r := abi.FileRequest{Op: abi.FileOpen, Flags: syscall.O_RDWR}
		defer runtime.KeepAlive(hostString(&r.Path, &r.PathLen, f.path))
		if m.handle = uint64(fileRequest(&r)); int64(m.handle) < 0 {
			return int64(m.handle)
		}
	}
	addr := pass(t, [6]uint64{a[0], a[1], a[2] | protWrite, a[3]&^mapShared | mapPrivate | mapAnonymous, ^uint64(0), 0})
	if addr < 0 {
		if m.handle != 0 {
			fileRequest(&abi.FileRequest{Op: abi.FileClose, Handle: m.handle})
		}
		return addr
	}
	if fixed {
		t.proc.dropWindows(uint64(addr), uint64(addr)+pageUp(a[1]))
	}
	// Through a copy: the monitor cannot write pages of the new mapping not yet backed.
	buf := hostBuffer(int(min(fileLen, 1<<20)))
	for done := uint64(0); done < fileLen; {
		n := f.read(t, buf[:min(fileLen-done, uint64(len(buf)))], a[5]+done)
		if n <= 0 {
			break
		}
		copy(appBytes(uint64(addr)+done, uint64(n)), buf[:n])
		done += uint64(n)
	}
	if a[2]&protWrite == 0 {
		passThrough(syscall.SYS_MPROTECT)(t, [6]uint64{uint64(addr), a[1], a[2]})
	}
	t.proc.mapped(mapping{start: uint64(addr), end: uint64(addr) + pageUp(a[1]), off: a[5], prot: a[2],
		shared: a[3]&mapShared != 0, name: f.path})
	if m.handle != 0 {
		m.addr, m.length, m.off, m.fileLen = uint64(addr), a[1], a[5], fileLen
		p := t.proc
		p.mu.Lock()
		p.sharedMaps = append(p.sharedMaps, m)
		p.routeUnmapsLocked()
		p.mu.Unlock()
	}
	return addr
}

// sharedMapping is a shared writable file mapping, written back to the file later.
type sharedMapping struct {
	addr, length uint64
	handle       uint64 // the mapping's own, opened read-write
	off          uint64 // the file offset at addr
	fileLen      uint64 // bytes of the mapping the file holds: only those are written back
}

// writeBack writes the mapping's bytes in [lo, hi) to its file.
func (m *sharedMapping) writeBack(lo, hi uint64) {
	defer catchAppFault(nil) // the app unmapped what it mapped: nothing more to write
	lo, hi = max(lo, m.addr), min(hi, m.addr+m.fileLen)
	buf := hostBuffer(int(min(hi-lo, 1<<20)))
	for lo < hi {
		// Through a copy: reading here backs any page the app never touched.
		n := uint64(copy(buf, appBytes(lo, min(hi-lo, uint64(len(buf))))))
		r := abi.FileRequest{Op: abi.FileWrite, Handle: m.handle, Offset: m.off + lo - m.addr,
			Buf: uint64(uintptr(unsafe.Pointer(&buf[0]))), Len: n}
		if fileRequest(&r) <= 0 {
			return
		}
		lo += n
	}
}

// syncShared writes back what the app's shared file mappings hold in [lo, hi); with
// unmap, the range leaves them.
func (p *Process) syncShared(lo, hi uint64, unmap bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var kept []sharedMapping
	for _, m := range p.sharedMaps {
		end := m.addr + m.length
		if hi <= m.addr || lo >= end {
			kept = append(kept, m)
			continue
		}
		m.writeBack(lo, hi)
		if !unmap {
			kept = append(kept, m)
			continue
		}
		if lo > m.addr { // the part below stays mapped
			below := m
			below.length = lo - m.addr
			below.fileLen = min(m.fileLen, below.length)
			kept = append(kept, below)
		}
		if hi < end { // and the part above
			above := m
			above.addr, above.length, above.off = hi, end-hi, m.off+hi-m.addr
			above.fileLen = m.fileLen - min(m.fileLen, hi-m.addr)
			kept = append(kept, above)
		}
		if lo <= m.addr && hi >= end && !p.handleMapped(m.handle, kept) {
			fileRequest(&abi.FileRequest{Op: abi.FileClose, Handle: m.handle})
		}
	}
	p.sharedMaps = kept
	if len(kept) == 0 {
		p.routeUnmapsLocked()
	}
}

func (p *Process) handleMapped(h uint64, maps []sharedMapping) bool {
	for _, m := range maps {
		if m.handle == h {
			return true
		}
	}
	return false
}

func sysMunmap(t *Task, a [6]uint64) int64 {
	t.proc.syncShared(a[0], a[0]+a[1], true)
	r := passThrough(syscall.SYS_MUNMAP)(t, a)
	if r == 0 {
		t.proc.unmapped(a[0], a[0]+pageUp(a[1]))
		t.proc.dropWindows(a[0], a[0]+pageUp(a[1]))
	}
	return r
}

func pageUp(n uint64) uint64 { return (n + pageSize - 1) &^ (pageSize - 1) }

func sysMsync(t *Task, a [6]uint64) int64 {
	t.proc.syncShared(a[0], a[0]+a[1], false)
	return 0
}

// sysMremap resizes a private mapping: in place where the pages above it are free, else,
// with MREMAP_MAYMOVE, to a new mapping its bytes are copied to. Shared file mappings
// (written back by address) do not move.
func sysMremap(t *Task, a [6]uint64) int64 {
	const mayMove = 1
	addr, oldLen, newLen, flags := a[0], pageUp(a[1]), pageUp(a[2]), a[3]
	if addr%pageSize != 0 || newLen == 0 || flags&^mayMove != 0 {
		return -linux.EINVAL // MREMAP_FIXED and MREMAP_DONTUNMAP are not served
	}
	if !appRange(addr, max(oldLen, 1)) || !appRange(addr, newLen) {
		return -linux.EFAULT
	}
	unmap := passThrough(syscall.SYS_MUNMAP)
	if newLen <= oldLen {
		if newLen < oldLen {
			if e := sysMunmap(t, [6]uint64{addr + newLen, oldLen - newLen}); e < 0 {
				return e
			}
		}
		return int64(addr)
	}
	if oldLen == 0 {
		return -linux.EINVAL // a copy of a shared mapping: not served
	}
	t.proc.mu.Lock()
	for _, m := range t.proc.sharedMaps {
		if addr < m.addr+m.length && m.addr < addr+oldLen {
			t.proc.mu.Unlock()
			return -linux.EINVAL
		}
	}
	t.proc.mu.Unlock()
	const prot = syscall.PROT_READ | syscall.PROT_WRITE
	mmap := passThrough(syscall.SYS_MMAP)
	grown := mmap(t, [6]uint64{addr + oldLen, newLen - oldLen, prot,
		syscall.MAP_PRIVATE | syscall.MAP_ANONYMOUS | mapFixedNoReplace, ^uint64(0), 0})
	if grown == int64(addr+oldLen) {
		t.proc.mapped(mapping{start: addr + oldLen, end: addr + newLen, prot: prot})
		return int64(addr)
	}
	if grown >= 0 {
		unmap(t, [6]uint64{uint64(grown), newLen - oldLen})
	}
	if flags&mayMove == 0 {
		return -linux.ENOMEM
	}
	moved := mmap(t, [6]uint64{0, newLen, prot, syscall.MAP_PRIVATE | syscall.MAP_ANONYMOUS, ^uint64(0), 0})
	if moved < 0 {
		return moved
	}
	copied := func() (ok bool) {
		defer catchAppFault(nil) // a range the app never mapped: EFAULT, as Linux
		copy(appBytes(uint64(moved), oldLen), appBytes(addr, oldLen))
		return true
	}()
	if !copied {
		unmap(t, [6]uint64{uint64(moved), newLen})
		return -linux.EFAULT
	}
	unmap(t, [6]uint64{addr, oldLen})
	t.proc.unmapped(addr, addr+oldLen)
	t.proc.dropWindows(addr, addr+oldLen)
	t.proc.mapped(mapping{start: uint64(moved), end: uint64(moved) + newLen, prot: prot})
	return moved
}
