package memory

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// library writes a file of pages pages, page i filled with byte 'a'+i.
func library(t *testing.T, pages int) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lib.so")
	var data []byte
	for i := 0; i < pages; i++ {
		data = append(data, bytes.Repeat([]byte{byte('a' + i)}, pageSize)...)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestWindowMappingsArePrivateAndFreed(t *testing.T) {
	g, err := New(2 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.MapWindow(library(t, 1), 0, pageSize); err == nil {
		t.Fatal("a guest without a file window mapped a file")
	}
	if err := g.AddWindow(4 << 20); err != nil {
		t.Fatal(err)
	}
	lib := library(t, 3)
	a, err := g.MapWindow(lib, pageSize, 2*pageSize) // pages b and c
	if err != nil {
		t.Fatal(err)
	}
	b, err := g.MapWindow(lib, pageSize, 2*pageSize) // the same again: a mapping of its own
	if err != nil {
		t.Fatal(err)
	}
	if a < WindowAddr(2<<20) || b == a {
		t.Fatalf("mapped at %#x and %#x, window at %#x", a, b, WindowAddr(2<<20))
	}
	pa, _ := g.Slice(a, 2*pageSize)
	pb, _ := g.Slice(b, 2*pageSize)
	if pa[0] != 'b' || pa[pageSize] != 'c' {
		t.Fatalf("the mapping reads %q %q, want b c", pa[0], pa[pageSize])
	}
	pa[0] = 'X'
	if pb[0] != 'b' {
		t.Error("a write through one mapping reached another mapping of the same file")
	}
	if got := make([]byte, 1); func() byte { lib.ReadAt(got, pageSize); return got[0] }() != 'b' {
		t.Error("a write through a mapping reached the file")
	}
	if ws := g.Windows(); len(ws) != 2 || ws[0].GPA != a || ws[0].Off != pageSize || ws[0].Len != 2*pageSize {
		t.Errorf("Windows() = %+v", ws)
	}

	// A mapping of 2 MiB or more is 2 MiB aligned; one that does not fit is refused.
	big, err := g.MapWindow(library(t, 1), 0, 2<<20)
	if err != nil || big%(2<<20) != 0 {
		t.Fatalf("a 2 MiB mapping at %#x: %v", big, err)
	}
	if _, err := g.MapWindow(lib, 0, 4<<20); err == nil {
		t.Error("a mapping larger than what is free was made")
	}

	if err := g.UnmapWindow(a); err != nil {
		t.Fatal(err)
	}
	if err := g.UnmapWindow(a); err == nil {
		t.Error("a mapping was removed twice")
	}
	if pa[0] != 0 || pa[pageSize] != 0 {
		t.Error("a removed mapping still reads the file")
	}
	if again, err := g.MapWindow(lib, 0, pageSize); err != nil || again != a {
		t.Errorf("freed addresses not reused: %#x, %v", again, err)
	}
	for _, bad := range []struct {
		off int64
		n   uint64
	}{{1, pageSize}, {-pageSize, pageSize}, {0, 0}} {
		if _, err := g.MapWindow(lib, bad.off, bad.n); err == nil {
			t.Errorf("MapWindow(off %d, n %d) accepted", bad.off, bad.n)
		}
	}
	if g.MapWindowAt(b, lib, 0, pageSize) == nil || g.MapWindowAt(1, lib, 0, pageSize) == nil {
		t.Error("MapWindowAt over a mapping or outside the window accepted")
	}
}

func TestSnapshotRestoreWithWindow(t *testing.T) {
	const size = 2 << 20
	lib := library(t, 2)
	g, _ := New(size)
	defer g.Close()
	g.AddWindow(2 << 20)
	at, err := g.MapWindow(lib, 0, 2*pageSize)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := g.Slice(at, 2*pageSize)
	w[pageSize+1] = 'W' // a relocation: copied; the page not written stays the file's
	copy(g.mem[pageSize:], "ram")
	snap, err := g.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	var st [1]byte
	if snap.ReadAt(st[:], int64(at)); st[0] != 0 {
		t.Error("an unwritten page of a window mapping was copied")
	}

	h, _ := New(size)
	defer h.Close()
	h.AddWindow(2 << 20)
	for _, m := range g.Windows() {
		if err := h.MapWindowAt(m.GPA, m.File, m.Off, m.Len); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Restore(snap); err != nil {
		t.Fatal(err)
	}
	hw, _ := h.Slice(at, 2*pageSize)
	if !bytes.Equal(hw, w) || !bytes.Equal(h.mem, g.mem) {
		t.Fatalf("the copy differs: window %q...%q", hw[0], hw[pageSize+1])
	}
}
