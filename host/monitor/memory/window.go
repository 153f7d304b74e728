package memory

import (
	"fmt"
	"os"
	"sort"

	"golang.org/x/sys/unix"
)

// The file window is a range of guest-physical addresses above guest memory, its own KVM
// memory slot, where files are mapped privately on the guest's demand (shared libraries):
// the guest reads the host's page cache, which every guest mapping the same file shares,
// and a write copies that page for this guest only. Each mapping has addresses of its own,
// so two mappings of one file are as independent as two private mmaps are on Linux.
// Addresses no mapping holds are anonymous memory the guest is never given.

// Window is a file mapped into the file window.
type Window struct {
	GPA  uint64
	Len  uint64 // page aligned
	Off  int64  // the file offset at GPA
	File *os.File
}

// windowAlign is the alignment of mappings of at least its size, so that tier 0 can map
// them with 2 MiB pages where the app's addresses allow.
const windowAlign = 2 << 20

// WindowAddr is where the file window of a guest with memSize bytes of memory starts: at a
// GiB boundary at least a GiB above it (no range of guest memory and the window can
// touch), and above 4 GiB, clear of what Intel VT-x keeps below there.
func WindowAddr(memSize uint64) uint64 {
	return max(4<<30, (memSize+1<<30-1)&^(1<<30-1)+1<<30)
}

// AddWindow reserves a file window of size bytes (a multiple of 2 MiB) at
// WindowAddr(Size()).
func (g *Guest) AddWindow(size uint64) error {
	if size == 0 || size%windowAlign != 0 || g.window != nil {
		return fmt.Errorf("a file window of %d bytes", size)
	}
	w, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return fmt.Errorf("reserving a file window of %d MiB: %w", size>>20, err)
	}
	unix.Madvise(w, unix.MADV_NOHUGEPAGE)
	g.window, g.windowAddr = w, WindowAddr(g.Size())
	g.windowFree = []span{{g.windowAddr, g.windowAddr + size}}
	g.windows = map[uint64]*Window{}
	return nil
}

// WindowBytes returns the file window's host memory and guest-physical address, for
// registering it with KVM; nil without one.
func (g *Guest) WindowBytes() ([]byte, uint64) { return g.window, g.windowAddr }

// span is a range [start, end) of guest-physical addresses.
type span struct{ start, end uint64 }

// MapWindow maps n bytes of f from offset off (page aligned) at free addresses of the
// file window and returns the first. It keeps a descriptor of its own for f (Windows).
func (g *Guest) MapWindow(f *os.File, off int64, n uint64) (uint64, error) {
	if g.window == nil {
		return 0, unix.ENODEV
	}
	n = (n + pageSize - 1) &^ (pageSize - 1)
	if n == 0 || off < 0 || off%pageSize != 0 {
		return 0, unix.EINVAL
	}
	align := uint64(pageSize)
	if n >= windowAlign {
		align = windowAlign
	}
	for _, s := range g.windowFree {
		gpa := (s.start + align - 1) &^ (align - 1)
		if gpa < s.end && s.end-gpa >= n {
			return gpa, g.MapWindowAt(gpa, f, off, n)
		}
	}
	return 0, unix.ENOMEM
}

// MapWindowAt maps n bytes of f from off at gpa, free addresses of the file window: a
// fork's copy has its parent's mappings where its parent had them.
func (g *Guest) MapWindowAt(gpa uint64, f *os.File, off int64, n uint64) error {
	i := sort.Search(len(g.windowFree), func(i int) bool { return g.windowFree[i].end > gpa })
	if g.window == nil || n == 0 || n%pageSize != 0 || gpa%pageSize != 0 || gpa+n < gpa ||
		i == len(g.windowFree) || g.windowFree[i].start > gpa || g.windowFree[i].end < gpa+n {
		return unix.EINVAL
	}
	own, err := dup(f)
	if err != nil {
		return err
	}
	if err := g.MapFile(gpa, own, off, n); err != nil {
		own.Close()
		return err
	}
	s := g.windowFree[i]
	parts := []span{}
	if s.start < gpa {
		parts = append(parts, span{s.start, gpa})
	}
	if gpa+n < s.end {
		parts = append(parts, span{gpa + n, s.end})
	}
	g.windowFree = append(g.windowFree[:i], append(parts, g.windowFree[i+1:]...)...)
	g.windows[gpa] = &Window{GPA: gpa, Len: n, Off: off, File: own}
	return nil
}

// UnmapWindow removes the mapping at gpa (an address MapWindow answered); its addresses
// read zeros and are free again.
func (g *Guest) UnmapWindow(gpa uint64) error {
	w := g.windows[gpa]
	if w == nil {
		return unix.EINVAL
	}
	b, err := g.Slice(w.GPA, w.Len)
	if err != nil {
		return err
	}
	if _, err := unix.MmapPtr(-1, 0, unsafeData(b), uintptr(w.Len), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE|unix.MAP_FIXED); err != nil {
		return fmt.Errorf("unmapping %s from the file window: %w", w.File.Name(), err)
	}
	w.File.Close()
	delete(g.windows, gpa)
	g.windowFree = append(g.windowFree, span{w.GPA, w.GPA + w.Len})
	sort.Slice(g.windowFree, func(i, j int) bool { return g.windowFree[i].start < g.windowFree[j].start })
	merged := g.windowFree[:1]
	for _, s := range g.windowFree[1:] {
		if last := &merged[len(merged)-1]; last.end == s.start {
			last.end = s.end
		} else {
			merged = append(merged, s)
		}
	}
	g.windowFree = merged
	return nil
}

// Windows lists the file window's mappings, by address.
func (g *Guest) Windows() []Window {
	ws := make([]Window, 0, len(g.windows))
	for _, w := range g.windows {
		ws = append(ws, *w)
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].GPA < ws[j].GPA })
	return ws
}

func dup(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}
