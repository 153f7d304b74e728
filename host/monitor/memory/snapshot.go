package memory

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Page flags in /proc/self/pagemap (Documentation/admin-guide/mm/pagemap.rst).
const (
	pagePresent = 1 << 63
	pageSwapped = 1 << 62
	pageFile    = 1 << 61 // a page of the page cache: a file mapping's page not yet written
)

// Snapshot copies what the guest has written into a new memory file (a memfd) whose
// offsets are guest-physical addresses: each page of guest memory and of its file window
// the host backs with anonymous memory, present or swapped out. Pages never touched read
// as zero, and pages of a file mapping the guest has not written are the file's: a guest
// built the same way, with the same file window mappings, has both already, so they are
// left out.
func (g *Guest) Snapshot() (*os.File, error) {
	fd, err := unix.MemfdCreate("pith-fork", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "pith-fork")
	if err := g.snapshotTo(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// span is the size of a Snapshot: up to the end of the file window, if any.
func (g *Guest) span() uint64 {
	if g.window != nil {
		return g.windowAddr + uint64(len(g.window))
	}
	return uint64(len(g.mem))
}

func (g *Guest) snapshotTo(f *os.File) error {
	if err := f.Truncate(int64(g.span())); err != nil {
		return err
	}
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return err
	}
	defer pm.Close()
	if err := copyWritten(pm, f, g.mem, 0); err != nil {
		return err
	}
	if g.window != nil {
		return copyWritten(pm, f, g.window, g.windowAddr)
	}
	return nil
}

// copyWritten writes the pages of mem, guest memory from gpa, that the host backs with
// anonymous memory into f at their guest-physical addresses.
func copyWritten(pm, f *os.File, mem []byte, gpa uint64) error {
	base := uint64(uintptr(unsafe.Pointer(&mem[0])))
	const batch = 4096 // pages per pagemap read
	entries := make([]byte, 8*batch)
	pages := uint64(len(mem)) / pageSize
	start := int64(-1) // first page of the run being gathered
	flush := func(end uint64) error {
		if start < 0 {
			return nil
		}
		from, to := uint64(start)*pageSize, end*pageSize
		start = -1
		_, err := f.WriteAt(mem[from:to], int64(gpa+from))
		return err
	}
	for p := uint64(0); p < pages; p += batch {
		n := min(batch, pages-p)
		if _, err := pm.ReadAt(entries[:8*n], int64((base/pageSize+p)*8)); err != nil && err != io.EOF {
			return fmt.Errorf("reading /proc/self/pagemap: %w", err)
		}
		for i := uint64(0); i < n; i++ {
			e := binary.LittleEndian.Uint64(entries[8*i:])
			written := e&pageSwapped != 0 || e&pagePresent != 0 && e&pageFile == 0
			switch {
			case written && start < 0:
				start = int64(p + i)
			case !written:
				if err := flush(p + i); err != nil {
					return err
				}
			}
		}
	}
	return flush(pages)
}

// Restore reads a Snapshot of a guest of the same size, with the same file window
// mappings, into this one: each range the snapshot holds (SEEK_DATA), leaving the rest
// as it is.
func (g *Guest) Restore(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != int64(g.span()) {
		return fmt.Errorf("the memory of the guest to copy is %d MiB, this one's %d MiB", fi.Size()>>20, g.span()>>20)
	}
	fd := int(f.Fd())
	for off := int64(0); off < fi.Size(); {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break // no data past off
		}
		if err != nil {
			return fmt.Errorf("reading the guest to copy: %w", err)
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("reading the guest to copy: %w", err)
		}
		b, err := g.Slice(uint64(data), uint64(hole-data))
		if err != nil {
			return fmt.Errorf("the guest to copy: %w", err)
		}
		if _, err := f.ReadAt(b, data); err != nil {
			return fmt.Errorf("reading the guest to copy: %w", err)
		}
		off = hole
	}
	return nil
}
