package fileservice

import (
	"bytes"
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

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
	inheriting := func(n uint64, strs []byte) []byte {
		r := abi.SpawnRequest{Strings: stringsAt, StringsLen: uint64(len(strs)), Argc: 2, Envc: 1, NInherited: n}
		r.Inherited[0] = abi.SpawnFD{FD: 3, Kind: abi.SpawnFile, Handle: 1}
		b, _ := binary.Append(nil, binary.LittleEndian, r)
		return b
	}
	withPath := append(append([]byte{}, good...), "/work/log\x00"...)
	f.Add(inheriting(1, withPath), withPath, uint64(reqAt))
	f.Add(inheriting(1, good), good, uint64(reqAt))                               // its path missing
	f.Add(inheriting(abi.SpawnMaxInherited+1, withPath), withPath, uint64(reqAt)) // too many
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
		if uint64(len(asked.argv)) != got.Argc || uint64(len(asked.env)) != got.Envc || got.Argc == 0 ||
			uint64(len(asked.inheritedPaths)) != got.NInherited || got.NInherited > abi.SpawnMaxInherited {
			t.Fatalf("argc %d envc %d inherited %d decoded as %d, %d and %d strings", got.Argc, got.Envc, got.NInherited,
				len(asked.argv), len(asked.env), len(asked.inheritedPaths))
		}
		for _, s := range append(append(append([]string{asked.path, asked.cwd, asked.exe}, asked.argv...), asked.env...), asked.inheritedPaths...) {
			if strings.IndexByte(s, 0) >= 0 || !bytes.Contains(mem[stringsAt:], []byte(s)) && got.Strings == stringsAt {
				t.Fatalf("decoded string %q is not one the guest wrote", s)
			}
		}
	})
}

// A started program inherits host files the guest has open, named by ascending
// descriptors above 2; anything else the guest asks for is refused.
func TestInheritedFiles(t *testing.T) {
	s := &Service{files: map[uint64]*os.File{7: os.Stdin, 9: os.Stdout}}
	ask := func(fds ...abi.SpawnFD) *abi.SpawnRequest {
		r := &abi.SpawnRequest{NInherited: uint64(len(fds))}
		copy(r.Inherited[:], fds)
		return r
	}
	files, e := s.inherited(ask(abi.SpawnFD{FD: 3, Kind: abi.SpawnFile, Handle: 7}, abi.SpawnFD{FD: 4, Kind: abi.SpawnPipeOut},
		abi.SpawnFD{FD: 63, Kind: abi.SpawnFile, Handle: 9}))
	if e != 0 || len(files) != 3 || files[0] != os.Stdin || files[1] != nil || files[2] != os.Stdout {
		t.Fatalf("inherited(3, 4, 63) = %v, %d", files, e)
	}
	for name, tc := range map[string]struct {
		req  *abi.SpawnRequest
		want unix.Errno
	}{
		"descriptor 2":       {ask(abi.SpawnFD{FD: 2, Kind: abi.SpawnFile, Handle: 7}), unix.EINVAL},
		"not ascending":      {ask(abi.SpawnFD{FD: 5, Kind: abi.SpawnFile, Handle: 7}, abi.SpawnFD{FD: 4, Kind: abi.SpawnFile, Handle: 9}), unix.EINVAL},
		"twice":              {ask(abi.SpawnFD{FD: 5, Kind: abi.SpawnFile, Handle: 7}, abi.SpawnFD{FD: 5, Kind: abi.SpawnFile, Handle: 9}), unix.EINVAL},
		"past the table":     {ask(abi.SpawnFD{FD: maxGuestFD, Kind: abi.SpawnFile, Handle: 7}), unix.EINVAL},
		"no such handle":     {ask(abi.SpawnFD{FD: 3, Kind: abi.SpawnFile, Handle: 8}), unix.EBADF},
		"too many":           {&abi.SpawnRequest{NInherited: abi.SpawnMaxInherited + 1}, unix.EINVAL},
		"not a file or pipe": {ask(abi.SpawnFD{FD: 3, Kind: abi.SpawnStdout}), unix.EINVAL},
	} {
		if files, e := s.inherited(tc.req); e != -int64(tc.want) || files != nil {
			t.Errorf("%s: inherited = %v, %d; want nil, %d", name, files, e, -int64(tc.want))
		}
	}
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
