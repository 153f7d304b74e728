package memory

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSliceIsBoundsChecked(t *testing.T) {
	g, err := New(2 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, c := range []struct {
		gpa, n uint64
		ok     bool
	}{
		{0, 2 << 20, true},
		{2<<20 - 8, 8, true},
		{2<<20 - 8, 9, false},
		{2 << 20, 0, true},
		{2<<20 + 1, 0, false},
		{^uint64(0) - 3, 8, false}, // gpa+n overflows
		{8, ^uint64(0), false},
	} {
		b, err := g.Slice(c.gpa, c.n)
		if (err == nil) != c.ok {
			t.Errorf("Slice(%#x, %#x): err %v, want ok=%v", c.gpa, c.n, err, c.ok)
		}
		if err == nil && (uint64(len(b)) != c.n || uint64(cap(b)) != c.n) {
			t.Errorf("Slice(%#x, %#x): len %d cap %d", c.gpa, c.n, len(b), cap(b))
		}
	}
}

func TestNewRejectsOddSizes(t *testing.T) {
	for _, size := range []uint64{0, 4096, 3 << 20} {
		if g, err := New(size); err == nil {
			g.Close()
			t.Errorf("New(%d) accepted", size)
		}
	}
}

func TestReleaseZeroes(t *testing.T) {
	g, _ := New(2 << 20)
	defer g.Close()
	b, _ := g.Slice(0x1000, 0x2000)
	for i := range b {
		b[i] = 0xaa
	}
	if err := g.Release(0x1000, 0x1000); err != nil {
		t.Fatal(err)
	}
	if b[0] != 0 || b[0xfff] != 0 || b[0x1000] != 0xaa {
		t.Errorf("after release: %x %x %x, want 0 0 aa", b[0], b[0xfff], b[0x1000])
	}
	if g.Release(0x1001, 0x1000) == nil || g.Release(0x1000, 0x10) == nil {
		t.Error("unaligned release accepted")
	}
	if g.Release(2<<20, 0x1000) == nil {
		t.Error("release outside memory accepted")
	}
}

func TestMapFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	data := make([]byte, 8192)
	copy(data[4096:], "second page")
	os.WriteFile(path, data, 0o644)
	f, _ := os.Open(path)
	defer f.Close()
	g, _ := New(2 << 20)
	defer g.Close()
	if err := g.MapFile(0x10000, f, 4096, 11); err != nil {
		t.Fatal(err)
	}
	b, _ := g.Slice(0x10000, 11)
	if string(b) != "second page" {
		t.Fatalf("mapped %q", b)
	}
	b[0] = 'S' // copy-on-write: the file must not change
	if got, _ := os.ReadFile(path); got[4096] != 's' {
		t.Error("a guest write reached the file")
	}
	if g.MapFile(0x10001, f, 0, 1) == nil || g.MapFile(2<<20, f, 0, 4096) == nil {
		t.Error("bad mapping accepted")
	}
}
