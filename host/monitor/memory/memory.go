// Package memory is guest RAM: the only place a guest-physical address becomes host bytes,
// always through a bounds check, since every address the guest hands over is untrusted.
package memory

import (
	"encoding/binary"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

const pageSize = 4096

// Guest is guest-physical memory from address 0, backed lazily by the host: untouched
// pages cost nothing.
type Guest struct {
	mem []byte

	window     []byte // the file window (window.go), at windowAddr; nil: none
	windowAddr uint64
	windowFree []span // its free addresses, in order
	windows    map[uint64]*Window
}

// New reserves size bytes of guest memory (MAP_NORESERVE: backed on first touch).
func New(size uint64) (*Guest, error) {
	if size == 0 || size%(2<<20) != 0 {
		return nil, fmt.Errorf("guest memory must be a positive multiple of 2 MiB, not %d bytes", size)
	}
	mem, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("reserving %d MiB of guest memory: %w", size>>20, err)
	}
	// 4 KiB pages, never transparent huge ones: where THP is "always" (Debian's
	// default), a guest's first touch in a 2 MiB range, and khugepaged later, would back
	// the whole range, and an idle guest grew by 12 MiB in its first minute (measured,
	// docs/lifecycle.md). Density over the fewer TLB misses of 2 MiB mappings.
	unix.Madvise(mem, unix.MADV_NOHUGEPAGE)
	return &Guest{mem: mem}, nil
}

// Bytes returns all of guest memory, for registering it with KVM.
func (g *Guest) Bytes() []byte { return g.mem }

// Size is the guest memory size in bytes.
func (g *Guest) Size() uint64 { return uint64(len(g.mem)) }

// Slice returns guest memory [gpa, gpa+n), or an error if any of it is outside: outside
// guest memory and outside its file window.
func (g *Guest) Slice(gpa, n uint64) ([]byte, error) {
	mem, at := g.mem, gpa
	if g.window != nil && gpa >= g.windowAddr {
		mem, at = g.window, gpa-g.windowAddr
	}
	if at > uint64(len(mem)) || n > uint64(len(mem))-at {
		return nil, fmt.Errorf("guest range %#x+%#x outside its %d MiB of memory", gpa, n, len(g.mem)>>20)
	}
	return mem[at : at+n : at+n], nil
}

// Uint64 reads a little-endian word at gpa.
func (g *Guest) Uint64(gpa uint64) (uint64, error) {
	b, err := g.Slice(gpa, 8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// PutUint64 writes a little-endian word at gpa.
func (g *Guest) PutUint64(gpa, v uint64) error {
	b, err := g.Slice(gpa, 8)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(b, v)
	return nil
}

// Release drops the host memory behind [gpa, gpa+n) (page aligned): the guest reads zeros
// there next, and the host's memory use falls.
func (g *Guest) Release(gpa, n uint64) error {
	if gpa%pageSize != 0 || n%pageSize != 0 {
		return fmt.Errorf("release of %#x+%#x is not page aligned", gpa, n)
	}
	b, err := g.Slice(gpa, n)
	if err != nil || n == 0 {
		return err
	}
	return unix.Madvise(b, unix.MADV_DONTNEED)
}

// Close unmaps guest memory and its file window.
func (g *Guest) Close() error {
	if g.window != nil {
		for _, w := range g.windows {
			w.File.Close()
		}
		unix.Munmap(g.window)
	}
	return unix.Munmap(g.mem)
}

// MapFile maps n bytes of file f from offset off at guest-physical gpa (both page
// aligned), private and copy-on-write: the guest reads the host's page cache, shared
// between guests, and nothing is copied until the guest writes.
func (g *Guest) MapFile(gpa uint64, f *os.File, off int64, n uint64) error {
	if gpa%pageSize != 0 || off%pageSize != 0 {
		return fmt.Errorf("file mapping at %#x from offset %#x is not page aligned", gpa, off)
	}
	n = (n + pageSize - 1) &^ (pageSize - 1)
	b, err := g.Slice(gpa, n)
	if err != nil || n == 0 {
		return err
	}
	_, err = unix.MmapPtr(int(f.Fd()), off, unsafeData(b), uintptr(n),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_FIXED)
	if err != nil {
		return fmt.Errorf("mapping %s into guest memory: %w", f.Name(), err)
	}
	return nil
}

func unsafeData(b []byte) unsafe.Pointer { return unsafe.Pointer(&b[0]) }
