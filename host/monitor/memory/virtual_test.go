package memory

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// The guest writes the page tables Virtual walks and the addresses it is asked to read:
// whatever they hold, a walk must end in data or an error, never a panic or a byte
// outside guest memory.
func FuzzVirtual(f *testing.F) {
	// A valid map: PML4 at 0x1000, PDPT at 0x2000, PD at 0x3000 with one 2 MiB page at 0,
	// and a PT at 0x4000 for the next 2 MiB, whose first entry points past guest memory.
	tables := make([]byte, 0x5000)
	put := func(at, v uint64) { binary.LittleEndian.PutUint64(tables[at:], v) }
	put(0x1000, 0x2003)
	put(0x2000, 0x3003)
	put(0x3000, 0x83)
	put(0x3008, 0x4003)
	put(0x4000, 1<<30|3)
	f.Add(tables, uint64(0x1000), uint64(0x1ff0), uint16(64))
	f.Add(tables, uint64(0x1000), uint64(0x1ffff8), uint16(16)) // across into the 4 KiB map
	f.Add(tables, uint64(0x1000), uint64(0x200000), uint16(8))  // the page outside memory
	f.Add(tables, uint64(0x1000), ^uint64(0)-3, uint16(8))      // wrapping around
	f.Add(tables, uint64(0xfffffffff000), uint64(0), uint16(1)) // CR3 outside memory
	g, err := New(2 << 20)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { g.Close() })
	f.Fuzz(func(t *testing.T, tables []byte, cr3, va uint64, n uint16) {
		clear(g.Bytes()[:0x10000])
		copy(g.Bytes()[:0x10000], tables)
		mmu := g.Virtual(cr3)
		b := make([]byte, n)
		if mmu.Read(va, b) != nil {
			return
		}
		if err := mmu.Write(va, b); err != nil {
			t.Fatalf("read %#x+%d, but writing it back failed: %v", va, n, err)
		}
		again := make([]byte, n)
		if err := mmu.Read(va, again); err != nil || !bytes.Equal(again, b) {
			t.Fatalf("read %#x+%d twice: %v, differs %v", va, n, err, !bytes.Equal(again, b))
		}
	})
}
