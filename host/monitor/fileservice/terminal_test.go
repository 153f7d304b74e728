package fileservice

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/test/testenv"
)

// newStreamService is a file service whose standard streams are the given descriptors.
func newStreamService(t *testing.T, stdio [3]int) *Service {
	t.Helper()
	s, err := New(Options{Exe: os.Args[0]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.stdio = stdio
	s.ServeStdin()
	return s
}

// Standard input is read when the guest reads it, and only as much as it asks: what it
// leaves stays in the host's stream for the programs it starts. A read never waits.
func TestStdinIsReadOnDemand(t *testing.T) {
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	s := newStreamService(t, [3]int{p[0], 1, 2})
	g := identityMapped(t)
	const bufAt = 0x20000
	stdin := func(flags, n uint64) (int64, string) {
		r := &abi.FileRequest{Op: abi.FileStdin, Buf: bufAt, Len: n, Flags: flags}
		got := s.do(g.Virtual(0x1000), r)
		return got, string(g.Bytes()[bufAt : bufAt+uint64(max(got, 0))])
	}
	if got, _ := stdin(abi.FileStdinPoll, 0); got != -int64(unix.EAGAIN) {
		t.Errorf("poll of an empty pipe: %d, want EAGAIN", got)
	}
	if got, _ := stdin(0, 100); got != -int64(unix.EAGAIN) {
		t.Errorf("read of an empty pipe: %d, want EAGAIN", got)
	}
	unix.Write(p[1], []byte("one\ntwo\n"))
	if got, _ := stdin(abi.FileStdinPoll, 0); got != 1 {
		t.Errorf("poll with input: %d, want 1", got)
	}
	if got, b := stdin(0, 4); got != 4 || b != "one\n" {
		t.Errorf("read of 4: %d %q, want 4 \"one\\n\"", got, b)
	}
	if got := s.do(g.Virtual(0x1000), &abi.FileRequest{Op: abi.FileStdin, Buf: 3 << 20, Len: 4}); got != -int64(unix.EFAULT) {
		t.Errorf("read into memory the guest does not have: %d, want EFAULT", got)
	}
	rest := make([]byte, 100)
	if n, _ := unix.Read(p[0], rest); string(rest[:n]) != "two\n" {
		t.Errorf("the stream kept %q, want \"two\\n\" (read ahead, or lost at EFAULT)", rest[:n])
	}
	unix.Close(p[1])
	if got, _ := stdin(0, 100); got != 0 {
		t.Errorf("read at the end: %d, want 0", got)
	}
	s.stdinServed = false
	if got, _ := stdin(0, 100); got != -int64(unix.EAGAIN) {
		t.Errorf("read of a stream not served: %d, want EAGAIN", got)
	}
}

// A program's terminal ioctls are made on pith's own terminal; on a stream that is no
// terminal they answer ENOTTY, as Linux's. The modes the guest changed are put back
// when the service closes.
func TestTerminalIoctls(t *testing.T) {
	_, tty := testenv.OpenPTY(t)
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	s := newStreamService(t, [3]int{int(tty.Fd()), p[1], int(tty.Fd())})
	g := identityMapped(t)
	const bufAt = 0x20000
	ioctl := func(stream int, req uint64, arg []byte) (int64, []byte) {
		copy(g.Bytes()[bufAt:], arg)
		r := &abi.FileRequest{Op: abi.FileTerminal, Handle: uint64(stream), Flags: req, Buf: bufAt, Len: uint64(len(arg))}
		got := s.do(g.Virtual(0x1000), r)
		return got, bytes.Clone(g.Bytes()[bufAt : bufAt+uint64(len(arg))])
	}
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	got, modes := ioctl(0, unix.TCGETS, make([]byte, 36))
	if got != 0 || binary.LittleEndian.Uint32(modes[12:]) != before.Lflag {
		t.Fatalf("TCGETS: %d, c_lflag %#x; want 0, %#x", got, binary.LittleEndian.Uint32(modes[12:]), before.Lflag)
	}
	if got, _ := ioctl(1, unix.TCGETS, make([]byte, 36)); got != -int64(unix.ENOTTY) {
		t.Errorf("TCGETS on a pipe: %d, want ENOTTY", got)
	}
	if got, _ := ioctl(3, unix.TCGETS, make([]byte, 36)); got != -int64(unix.EBADF) {
		t.Errorf("TCGETS on stream 3: %d, want EBADF", got)
	}
	if got, _ := ioctl(0, unix.TIOCSTI, []byte{'x'}); got != -int64(unix.ENOTTY) {
		t.Errorf("TIOCSTI (typing into the user's terminal): %d, want ENOTTY", got)
	}
	if got, _ := ioctl(0, unix.TCGETS, make([]byte, 44)); got != -int64(unix.EFAULT) {
		t.Errorf("TCGETS with 44 bytes: %d, want EFAULT", got)
	}
	// Echo off through stream 2, as getpass does; the window size set and read back.
	binary.LittleEndian.PutUint32(modes[12:], before.Lflag&^unix.ECHO)
	if got, _ := ioctl(2, unix.TCSETSF, modes); got != 0 {
		t.Fatalf("TCSETSF: %d", got)
	}
	if now, _ := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS); now.Lflag&unix.ECHO != 0 {
		t.Errorf("echo still on after TCSETSF")
	}
	ws := []byte{33, 0, 101, 0, 0, 0, 0, 0}
	if got, _ := ioctl(0, unix.TIOCSWINSZ, ws); got != 0 {
		t.Errorf("TIOCSWINSZ: %d", got)
	}
	if w, err := unix.IoctlGetWinsize(int(tty.Fd()), unix.TIOCGWINSZ); err != nil || w.Row != 33 || w.Col != 101 {
		t.Errorf("the terminal's size: %+v, %v; want 33 rows, 101 columns", w, err)
	}
	if got, w := ioctl(0, unix.TIOCGWINSZ, make([]byte, 8)); got != 0 || !bytes.Equal(w, ws) {
		t.Errorf("TIOCGWINSZ: %d %v, want %v", got, w, ws)
	}
	copy(g.Bytes()[bufAt:], "abc")
	if got := s.do(g.Virtual(0x1000), &abi.FileRequest{Op: abi.FileTerminal, Flags: unix.TCFLSH, Offset: unix.TCIFLUSH}); got != 0 {
		t.Errorf("TCFLSH: %d", got)
	}
	if got := s.do(g.Virtual(0x1000), &abi.FileRequest{Op: abi.FileTerminal, Flags: unix.TCGETS, Buf: 3 << 20, Len: 36}); got != -int64(unix.EFAULT) {
		t.Errorf("TCGETS into memory the guest does not have: %d, want EFAULT", got)
	}
	s.Close()
	if now, _ := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS); now.Lflag != before.Lflag {
		t.Errorf("after Close, c_lflag %#x, want %#x as before", now.Lflag, before.Lflag)
	}
}
