package fileservice

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
)

// fcntl's record locks are the host file's: one set through a handle is seen through
// another open description (OFD locks), let go with F_UNLCK; a file the guest cannot
// change takes any lock and has none held against it; what is not a lock request is
// refused.
func TestRecordLock(t *testing.T) {
	g := identityMapped(t)
	mmu := g.Virtual(0x1000)
	path := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var files [3]*os.File
	for i, flag := range []int{os.O_RDWR, os.O_RDWR, os.O_RDONLY} {
		f, err := os.OpenFile(path, flag, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files[i] = f
	}
	s := &Service{files: map[uint64]*os.File{1: files[0], 2: files[1], 3: files[2]},
		writable: map[uint64]bool{1: true, 2: true}, streams: map[uint64]int{}}
	const at = 0x10000
	le := binary.LittleEndian
	lock := func(h, cmd uint64, typ int16, start, n int64) (int64, unix.Flock_t) {
		b := g.Bytes()[at : at+abi.FlockSize]
		clear(b)
		le.PutUint16(b[0:], uint16(typ))
		le.PutUint64(b[8:], uint64(start))
		le.PutUint64(b[16:], uint64(n))
		r := s.do(mmu, &abi.FileRequest{Op: abi.FileRecordLock, Handle: h, Flags: cmd, Buf: at, Len: abi.FlockSize})
		return r, unix.Flock_t{Type: int16(le.Uint16(b[0:])), Start: int64(le.Uint64(b[8:])), Len: int64(le.Uint64(b[16:]))}
	}
	if r, _ := lock(1, unix.F_OFD_SETLK, unix.F_WRLCK, 0, 10); r != 0 {
		t.Fatalf("a write lock on bytes 0-9: %d", r)
	}
	if r, _ := lock(2, unix.F_OFD_SETLK, unix.F_RDLCK, 5, 1); r != -int64(unix.EAGAIN) {
		t.Errorf("a read lock on byte 5 through another description: %d, want EAGAIN", r)
	}
	if r, got := lock(2, unix.F_OFD_GETLK, unix.F_WRLCK, 0, 0); r != 0 || got.Type != unix.F_WRLCK || got.Start != 0 || got.Len != 10 {
		t.Errorf("F_OFD_GETLK through another description: %d, %+v; want the write lock on 0-9", r, got)
	}
	if r, _ := lock(2, unix.F_OFD_SETLK, unix.F_RDLCK, 10, 5); r != 0 {
		t.Errorf("a read lock on bytes 10-14, next to it: %d", r)
	}
	if r, _ := lock(1, unix.F_OFD_SETLK, unix.F_UNLCK, 0, 10); r != 0 {
		t.Errorf("letting go: %d", r)
	}
	if r, _ := lock(2, unix.F_OFD_SETLK, unix.F_WRLCK, 0, 5); r != 0 {
		t.Errorf("a write lock on bytes 0-4 once let go: %d", r)
	}
	if r, _ := lock(3, unix.F_SETLK, unix.F_WRLCK, 0, 0); r != 0 {
		t.Errorf("a write lock on a file the guest cannot change: %d, want 0 (no host lock)", r)
	}
	if r, got := lock(3, unix.F_GETLK, unix.F_WRLCK, 0, 0); r != 0 || got.Type != unix.F_UNLCK {
		t.Errorf("F_GETLK on a file the guest cannot change: %d, %+v; want F_UNLCK", r, got)
	}
	for _, tc := range []struct {
		name            string
		handle, cmd, at uint64
		size            uint64
		want            unix.Errno
	}{
		{"F_SETLKW (tier 1 waits)", 1, unix.F_SETLKW, at, abi.FlockSize, unix.EINVAL},
		{"a short struct", 1, unix.F_SETLK, at, 16, unix.EINVAL},
		{"no such handle", 99, unix.F_SETLK, at, abi.FlockSize, unix.EBADF},
		{"memory the guest lacks", 1, unix.F_SETLK, 4 << 20, abi.FlockSize, unix.EFAULT},
	} {
		r := &abi.FileRequest{Op: abi.FileRecordLock, Handle: tc.handle, Flags: tc.cmd, Buf: tc.at, Len: tc.size}
		if got := s.do(mmu, r); got != -int64(tc.want) {
			t.Errorf("%s: %d, want %d", tc.name, got, -int64(tc.want))
		}
	}
}
