package fileservice

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

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

// A child's CPU times come with its wait status (FileWaitChild with a buffer), and
// FileRusage answers this process's and its ended children's, as Linux's struct rusage.
func TestRusage(t *testing.T) {
	g := identityMapped(t)
	mmu := g.Virtual(0x1000)
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "spawned"), 0o700); err != nil {
		t.Fatal(err)
	}
	s := &Service{root: root, files: map[uint64]*os.File{}, streams: map[uint64]int{}, children: map[uint64]*spawned{}, next: 1}
	defer s.Close()
	const buf = 0x10000
	cpu := func() time.Duration { // ru_utime + ru_stime at buf
		b := g.Bytes()[buf:]
		us := func(o int) int64 {
			return int64(binary.LittleEndian.Uint64(b[o:]))*1e6 + int64(binary.LittleEndian.Uint64(b[o+8:]))
		}
		return time.Duration(us(0)+us(16)) * time.Microsecond
	}
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; exit 3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := s.track(cmd)
	var st int64
	for st = -int64(unix.EAGAIN); st == -int64(unix.EAGAIN); time.Sleep(10 * time.Millisecond) {
		st = s.do(mmu, &abi.FileRequest{Op: abi.FileWaitChild, Handle: uint64(h), Buf: buf, Len: abi.RusageSize})
	}
	if st != 3<<8 || cpu() < 10*time.Millisecond {
		t.Errorf("FileWaitChild: status %#x, CPU %v; want 0x300 and the loop's CPU time", st, cpu())
	}
	if e := s.do(mmu, &abi.FileRequest{Op: abi.FileRusage, Flags: abi.RusageChildren, Buf: buf, Len: abi.RusageSize}); e != 0 || cpu() < 10*time.Millisecond {
		t.Errorf("FileRusage of the children: %d, CPU %v; want the loop's", e, cpu())
	}
	if e := s.do(mmu, &abi.FileRequest{Op: abi.FileRusage, Flags: abi.RusageSelf, Buf: buf, Len: abi.RusageSize}); e != 0 || cpu() <= 0 {
		t.Errorf("FileRusage of this process: %d, CPU %v", e, cpu())
	}
	if e := s.do(mmu, &abi.FileRequest{Op: abi.FileRusage, Flags: 7, Buf: buf, Len: abi.RusageSize}); e != -int64(unix.EINVAL) {
		t.Errorf("FileRusage of who 7: %d, want EINVAL", e)
	}
}

// Reads and writes at FileAtCurrent use and move the host file's own offset, which a
// started program or a fork's copy holding the same file shares; FileSeek moves it;
// positioned ones leave it where it was.
func TestTheHostFilesOwnOffset(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "file")
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{files: map[uint64]*os.File{3: f}, streams: map[uint64]int{}, writable: map[uint64]bool{}, next: 4}
	defer s.Close()
	const bufAt = 0x10000
	g := identityMapped(t)
	mmu := g.Virtual(0x1000)
	rw := func(op uint64, b string, off, flags uint64) (int64, string) {
		copy(g.Bytes()[bufAt:], b)
		r := &abi.FileRequest{Op: op, Handle: 3, Buf: bufAt, Len: uint64(len(b)), Offset: off, Flags: flags}
		n := s.do(mmu, r)
		return n, string(g.Bytes()[bufAt : bufAt+max(n, 0)])
	}
	seek := func(off int64, whence uint64) int64 {
		return s.do(mmu, &abi.FileRequest{Op: abi.FileSeek, Handle: 3, Offset: uint64(off), Flags: whence})
	}
	rw(abi.FileWrite, "abc", 0, abi.FileAtCurrent)
	rw(abi.FileWrite, "def", 0, abi.FileAtCurrent)
	other, err := unix.Dup(int(f.Fd())) // a started program's copy of the descriptor
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(other)
	unix.Write(other, []byte("ghi"))
	if n, got := rw(abi.FileRead, "xxxx", 1, 0); n != 4 || got != "bcde" {
		t.Errorf("pread at 1 = %d %q, want 4 \"bcde\"", n, got)
	}
	if got := seek(0, 1); got != 9 {
		t.Errorf("offset after two writes here, one in a copy and a pread: %d, want 9", got)
	}
	if got := seek(2, 0); got != 2 {
		t.Errorf("FileSeek to 2 = %d", got)
	}
	if n, got := rw(abi.FileRead, "xxxx", 0, abi.FileAtCurrent); n != 4 || got != "cdef" {
		t.Errorf("read at the offset = %d %q, want 4 \"cdef\"", n, got)
	}
	if got, _ := unix.Seek(other, 0, 1); got != 6 {
		t.Errorf("the copy's offset: %d, want 6", got)
	}
	if got := seek(-1, 0); got != -int64(unix.EINVAL) {
		t.Errorf("FileSeek to -1 = %d, want EINVAL", got)
	}
	if n, _ := rw(abi.FileRead, "x", 1<<63, 0); n != -int64(unix.EINVAL) {
		t.Errorf("pread at 1<<63 = %d, want EINVAL", n)
	}
}
