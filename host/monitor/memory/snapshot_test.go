package memory

import (
	"bytes"
	"os"
	"testing"
)

func TestSnapshotRestore(t *testing.T) {
	const size = 4 << 20
	g, err := New(size)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	// A file mapping, read but not written on one page and written on the next.
	file, err := os.CreateTemp(t.TempDir(), "app")
	if err != nil {
		t.Fatal(err)
	}
	file.Write(bytes.Repeat([]byte{'f'}, 2*pageSize))
	if err := g.MapFile(2<<20, file, 0, 2*pageSize); err != nil {
		t.Fatal(err)
	}
	_ = g.mem[2<<20]
	g.mem[2<<20+pageSize] = 'w'
	copy(g.mem[pageSize:], "first")
	copy(g.mem[3*pageSize-2:], "across") // two pages
	copy(g.mem[size-5:], "last!")

	snap, err := g.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()

	h, err := New(size)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.MapFile(2<<20, file, 0, 2*pageSize); err != nil {
		t.Fatal(err)
	}
	if err := h.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.mem, h.mem) {
		t.Fatal("restored memory differs from the original")
	}
	// Only what was written travels: the untouched file page is not in the snapshot.
	var st [1]byte
	if _, err := snap.ReadAt(st[:], 2<<20); err != nil || st[0] != 0 {
		t.Errorf("the unwritten page of the file mapping was copied (%q, %v)", st[0], err)
	}

	small, _ := New(2 << 20)
	defer small.Close()
	if err := small.Restore(snap); err == nil {
		t.Error("a snapshot of another size was restored")
	}
}
