package fileservice

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
)

// FilePipe's two streams carry bytes without ever waiting, and a write of nothing says
// whether the read end is still open: what tier 1's bridges to a fork's child look at.
func TestPipeStreams(t *testing.T) {
	g := identityMapped(t)
	mmu := g.Virtual(0x1000)
	s := &Service{files: map[uint64]*os.File{}, streams: map[uint64]int{}, next: 1}
	defer s.Close()
	h := s.do(mmu, &abi.FileRequest{Op: abi.FilePipe})
	if h <= 0 {
		t.Fatalf("FilePipe: %d", h)
	}
	const buf = 0x10000
	copy(g.Bytes()[buf:], "hello")
	rw := func(op, handle, n uint64) int64 {
		return s.do(mmu, &abi.FileRequest{Op: op, Handle: handle, Buf: buf, Len: n})
	}
	if n := rw(abi.FileRead, uint64(h), 5); n != -int64(unix.EAGAIN) {
		t.Errorf("read of an empty pipe: %d, want EAGAIN", n)
	}
	if n := rw(abi.FileWrite, uint64(h)+1, 5); n != 5 {
		t.Fatalf("write: %d", n)
	}
	clear(g.Bytes()[buf : buf+5])
	if n := rw(abi.FileRead, uint64(h), 16); n != 5 || string(g.Bytes()[buf:buf+5]) != "hello" {
		t.Errorf("read: %d %q", n, g.Bytes()[buf:buf+5])
	}
	if n := rw(abi.FileWrite, uint64(h)+1, 0); n != 0 {
		t.Errorf("probe with the read end open: %d, want 0", n)
	}
	if e := s.do(mmu, &abi.FileRequest{Op: abi.FileClose, Handle: uint64(h)}); e != 0 {
		t.Fatal(e)
	}
	if n := rw(abi.FileWrite, uint64(h)+1, 0); n != -int64(unix.EPIPE) {
		t.Errorf("probe with the read end closed: %d, want EPIPE", n)
	}
}

// A fork's child has its parent's files under the same handles, and numbers its own
// after them.
func TestAdopt(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "file")
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Dup(int(f.Fd())) // the service takes it over
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	s := &Service{files: map[uint64]*os.File{}, streams: map[uint64]int{}, writable: map[uint64]bool{}, next: 1}
	defer s.Close()
	s.Adopt(ForkState{Next: 40, Files: []ForkFile{
		{Handle: 7, FD: fd, Writable: true},
		{Handle: 9, FD: p[0], Stream: true},
	}})
	if s.files[7] == nil || !s.writable[7] || s.streams[9] != p[0] || s.next != 40 {
		t.Errorf("adopted: files %v writable %v streams %v next %d", s.files, s.writable, s.streams, s.next)
	}
	g := identityMapped(t)
	if h := s.do(g.Virtual(0x1000), &abi.FileRequest{Op: abi.FilePipe}); h != 40 {
		t.Errorf("the child's first handle is %d, want 40", h)
	}
}
