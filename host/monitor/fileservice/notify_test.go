package fileservice

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
)

// FileNotify answers 1 for what is so already, else watches for it and tells the guest
// once, counting the watches meanwhile: a pipe with bytes or room, a pipe's other end
// closed, pith's stdin, a program's end. A
// watch ends with its handle's close, and nothing is told after Close.
func TestNotify(t *testing.T) {
	g := identityMapped(t)
	mmu := g.Virtual(0x1000)
	s := &Service{files: map[uint64]*os.File{}, streams: map[uint64]int{}, children: map[uint64]*spawned{}, next: 1, root: t.TempDir()}
	defer s.Close()
	notify := func(h, flags uint64) int64 {
		return s.do(mmu, &abi.FileRequest{Op: abi.FileNotify, Handle: h, Flags: flags})
	}
	if r := notify(1, abi.NotifyRead); r != -int64(unix.ENODEV) {
		t.Fatalf("FileNotify before SetNotify: %d, want ENODEV", r)
	}
	fired := make(chan struct{}, 8)
	var watching uint64
	s.SetNotify(func() { fired <- struct{}{} }, &watching)
	told := func(what string) {
		t.Helper()
		select {
		case <-fired:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the guest was not told", what)
		}
		for deadline := time.Now().Add(time.Second); atomic.LoadUint64(&watching) != 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: still %d watches after the news", what, atomic.LoadUint64(&watching))
			}
		}
	}

	h := uint64(s.do(mmu, &abi.FileRequest{Op: abi.FilePipe}))
	rd, wr := s.streams[h], s.streams[h+1]
	if r := notify(h, abi.NotifyRead); r != 0 || atomic.LoadUint64(&watching) != 1 {
		t.Fatalf("NotifyRead of an empty pipe: %d, %d watches; want 0, 1", r, watching)
	}
	if r := notify(h, abi.NotifyRead); r != 0 || atomic.LoadUint64(&watching) != 1 {
		t.Fatalf("NotifyRead asked again: %d, %d watches; want 0, still 1", r, watching)
	}
	unix.Write(wr, []byte("x"))
	told("bytes in the pipe")
	if r := notify(h, abi.NotifyRead); r != 1 {
		t.Errorf("NotifyRead of a pipe with bytes: %d, want 1", r)
	}
	if r := notify(h+1, abi.NotifyWrite); r != 1 {
		t.Errorf("NotifyWrite of a pipe with room: %d, want 1", r)
	}
	for {
		if _, err := unix.Write(wr, make([]byte, 4096)); err != nil {
			break // full
		}
	}
	if r := notify(h+1, abi.NotifyWrite); r != 0 {
		t.Fatalf("NotifyWrite of a full pipe: %d, want 0", r)
	}
	for {
		if _, err := unix.Read(rd, make([]byte, 65536)); err != nil {
			break // empty
		}
	}
	told("room in the pipe")

	// A watch on a handle that closes ends with it; a pipe whose writer closed reads
	// (its end) at once.
	if r := notify(h, abi.NotifyRead); r != 0 {
		t.Fatalf("NotifyRead of an empty pipe: %d", r)
	}
	s.do(mmu, &abi.FileRequest{Op: abi.FileClose, Handle: h})
	told("the watched handle closed")
	h2 := uint64(s.do(mmu, &abi.FileRequest{Op: abi.FilePipe}))
	s.do(mmu, &abi.FileRequest{Op: abi.FileClose, Handle: h2 + 1})
	if r := notify(h2, abi.NotifyRead); r != 1 {
		t.Errorf("NotifyRead of a pipe whose writer closed: %d, want 1", r)
	}
	if r := notify(h2, abi.NotifyClosed); r != 1 {
		t.Errorf("NotifyClosed of a pipe whose writer closed: %d, want 1", r)
	}

	// The other end's close, and only that: a write end with room is not news.
	h3 := uint64(s.do(mmu, &abi.FileRequest{Op: abi.FilePipe}))
	if r := notify(h3+1, abi.NotifyClosed); r != 0 {
		t.Fatalf("NotifyClosed of a write end with its reader: %d, want 0", r)
	}
	select {
	case <-fired:
		t.Fatalf("NotifyClosed told while the reader is there")
	case <-time.After(200 * time.Millisecond):
	}
	s.do(mmu, &abi.FileRequest{Op: abi.FileClose, Handle: h3})
	told("the reader closed")
	if r := notify(h3+1, abi.NotifyClosed); r != 1 {
		t.Errorf("NotifyClosed of a write end whose reader closed: %d, want 1", r)
	}

	// pith's standard input: bytes are news once it is served; before, nothing is.
	in := make([]int, 2)
	if err := unix.Pipe2(in, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(in[1])
	s.stdio[0] = in[0]
	if r := notify(0, abi.NotifyStdin); r != 0 {
		t.Fatalf("NotifyStdin of stdin not served: %d, want 0", r)
	}
	unix.Write(in[1], []byte("typed"))
	select {
	case <-fired:
		t.Fatalf("NotifyStdin told while stdin is not served")
	case <-time.After(200 * time.Millisecond):
	}
	s.unwatch(stdinWatch)
	<-fired // the watch's end
	s.ServeStdin()
	if r := notify(0, abi.NotifyStdin); r != 1 {
		t.Errorf("NotifyStdin of stdin with bytes: %d, want 1", r)
	}
	unix.Read(in[0], make([]byte, 16))
	if r := notify(0, abi.NotifyStdin); r != 0 {
		t.Fatalf("NotifyStdin of an empty stdin: %d, want 0", r)
	}
	unix.Write(in[1], []byte("more"))
	told("bytes on stdin")
	unix.Close(in[0])

	// A program's end.
	os.Mkdir(filepath.Join(s.root, "spawned"), 0o700)
	cmd := exec.Command("sleep", "0.3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := uint64(s.track(cmd))
	if r := notify(c, abi.NotifyExit); r != 0 {
		t.Fatalf("NotifyExit of a running program: %d, want 0", r)
	}
	told("the program's end")
	if r := notify(c, abi.NotifyExit); r != 1 {
		t.Errorf("NotifyExit of an ended program: %d, want 1", r)
	}
	if st := s.do(mmu, &abi.FileRequest{Op: abi.FileWaitChild, Handle: c}); st != 0 {
		t.Errorf("FileWaitChild: %d, want status 0", st)
	}

	for name, tc := range map[string]struct {
		h, flags uint64
		want     unix.Errno
	}{
		"no such stream": {99, abi.NotifyRead, unix.EBADF},
		"no such child":  {c, abi.NotifyExit, unix.ECHILD},
		"unknown flags":  {h2, 32, unix.EINVAL},
		"no flags":       {h2, 0, unix.EINVAL},
	} {
		if r := notify(tc.h, tc.flags); r != -int64(tc.want) {
			t.Errorf("%s: %d, want %d", name, r, -int64(tc.want))
		}
	}

	// After Close, a program that ends tells nothing (the guest's memory may be gone).
	cmd = exec.Command("sleep", "0.2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c = uint64(s.track(cmd))
	notify(c, abi.NotifyExit)
	s.stopNotify()
	time.Sleep(500 * time.Millisecond)
	select {
	case <-fired:
		t.Errorf("told after Close")
	default:
	}
}
