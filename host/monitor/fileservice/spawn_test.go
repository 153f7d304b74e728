package fileservice

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/host/monitor/memory"
)

// The spawn request and its strings come from the guest: whatever they say, decoding
// ends in a request whose counts match, or an errno.
func FuzzSpawnRequest(f *testing.F) {
	const reqAt, stringsAt = 0x10000, 0x20000
	g := identityMapped(f)
	request := func(argc, envc, at, n uint64) []byte {
		b, _ := binary.Append(nil, binary.LittleEndian, abi.SpawnRequest{Strings: at, StringsLen: n, Argc: argc, Envc: envc})
		return b
	}
	good := []byte("/bin/prog\x00/work\x00/bin/prog\x00prog\x00-v\x00HOME=/root\x00")
	f.Add(request(2, 1, stringsAt, uint64(len(good))), good, uint64(reqAt))
	f.Add(request(2, 1, stringsAt, uint64(len(good)-1)), good, uint64(reqAt))       // no final NUL
	f.Add(request(3, 1, stringsAt, uint64(len(good))), good, uint64(reqAt))         // counts do not add up
	f.Add(request(2, 1, 2<<20-8, uint64(len(good))), good, uint64(reqAt))           // strings run off the map
	f.Add(request(1<<63, 1<<63, stringsAt, uint64(len(good))), good, uint64(reqAt)) // counts that overflow
	f.Add(request(2, 1, stringsAt, 2<<20), good, uint64(2<<20-4))                   // request off the map
	f.Fuzz(func(t *testing.T, req, strs []byte, buf uint64) {
		mem := g.Bytes()
		clear(mem[reqAt:])
		copy(mem[reqAt:stringsAt], req)
		copy(mem[stringsAt:], strs)
		mmu := g.Virtual(0x1000)
		r := &abi.FileRequest{Buf: buf, Len: uint64(unsafe.Sizeof(abi.SpawnRequest{}))}
		got, asked, e := readSpawnRequest(mmu, r)
		if e != 0 {
			if e >= 0 {
				t.Fatalf("failed with %d, want a negative errno", e)
			}
			return
		}
		if uint64(len(asked.argv)) != got.Argc || uint64(len(asked.env)) != got.Envc || got.Argc == 0 {
			t.Fatalf("argc %d envc %d decoded as %d and %d strings", got.Argc, got.Envc, len(asked.argv), len(asked.env))
		}
		for _, s := range append(append([]string{asked.path, asked.cwd, asked.exe}, asked.argv...), asked.env...) {
			if strings.IndexByte(s, 0) >= 0 || !bytes.Contains(mem[stringsAt:], []byte(s)) && got.Strings == stringsAt {
				t.Fatalf("decoded string %q is not one the guest wrote", s)
			}
		}
	})
}

// identityMapped is 2 MiB of guest memory whose page tables at CR3 0x1000 map its
// virtual addresses onto the same physical ones, with one large page.
func identityMapped(tb testing.TB) *memory.Guest {
	g, err := memory.New(2 << 20)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.Close() })
	for at, v := range map[uint64]uint64{0x1000: 0x2003, 0x2000: 0x3003, 0x3000: 0x83} {
		binary.LittleEndian.PutUint64(g.Bytes()[at:], v)
	}
	return g
}
