package fileservice

import (
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
)

// pith's standard streams, as the guest's: its standard input read when the guest reads
// it, and the ioctls a program makes on a stream that is a terminal.

// ServeStdin lets the guest read pith's standard input (FileStdin); without it, the guest
// waits on it for ever, as on an open pipe no one writes.
func (s *Service) ServeStdin() { s.stdinServed = true }

// stdinRead serves FileStdin: a read of pith's standard input that never waits. Bytes
// leave the host's stream only when the guest asks for them, as a program's read takes
// them natively: a terminal or pipe pith shares with the programs the guest starts keeps
// what the guest has not read (read ahead, a started `cat`, or the command a shell runs
// next at its prompt, would find its input gone).
func (s *Service) stdinRead(c fileCall) int64 {
	r := c.r
	if !s.stdinServed {
		return -int64(unix.EAGAIN)
	}
	pfd := []unix.PollFd{{Fd: int32(s.stdio[0]), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, 0); err != nil || n == 0 {
		return -int64(unix.EAGAIN) // nothing yet (EINTR: look again)
	}
	if r.Flags&abi.FileStdinPoll != 0 {
		return 1
	}
	if pfd[0].Revents&unix.POLLNVAL != 0 || r.Len == 0 {
		return 0 // no standard input at all: its end
	}
	// The buffer is checked before anything is read: input read is input taken.
	b := c.buffer()
	if c.mmu.Write(r.Buf, b) != nil {
		return -int64(unix.EFAULT)
	}
	n, err := unix.Read(s.stdio[0], b)
	if err != nil {
		if err == unix.EIO { // a terminal that hung up
			return 0
		}
		return Errno(err)
	}
	if c.mmu.Write(r.Buf, b[:n]) != nil {
		return -int64(unix.EFAULT)
	}
	return int64(n)
}

// Linux's ioctl requests on terminals this file uses itself.
const (
	tcgets  = 0x5401
	tcsets  = 0x5402
	tcsetsw = 0x5403
	tcsetsf = 0x5404
)

// terminal serves FileTerminal: an ioctl on pith's own standard stream, for a program that
// sees it as its own (isatty, tcgetattr/tcsetattr, the window size). The first change of
// a terminal's modes records every terminal stream's modes, which Close puts back: a
// program that ends with the terminal raw, or a guest killed, leaves the user's shell as
// it was, as Docker and Firecracker do.
func (s *Service) terminal(c fileCall) int64 {
	r := c.r
	if r.Handle > 2 {
		return -int64(unix.EBADF)
	}
	fd := s.stdio[r.Handle]
	size, in, ok := abi.TerminalRequest(r.Flags)
	if !ok {
		return -int64(unix.ENOTTY)
	}
	var modes [36]byte
	if err := ioctl(fd, tcgets, unsafe.Pointer(&modes)); err != nil {
		return Errno(err) // ENOTTY: not a terminal, as Linux answers any tty ioctl there
	}
	if size == 0 {
		return Errno(ioctlInt(fd, r.Flags, r.Offset))
	}
	if r.Len != uint64(size) {
		return -int64(unix.EFAULT)
	}
	arg := make([]byte, size)
	if in {
		if c.mmu.Read(r.Buf, arg) != nil {
			return -int64(unix.EFAULT)
		}
		if r.Flags == tcsets || r.Flags == tcsetsw || r.Flags == tcsetsf {
			s.saveTerminals()
		}
		return Errno(ioctl(fd, r.Flags, unsafe.Pointer(&arg[0])))
	}
	if err := ioctl(fd, r.Flags, unsafe.Pointer(&arg[0])); err != nil {
		return Errno(err)
	}
	if c.mmu.Write(r.Buf, arg) != nil {
		return -int64(unix.EFAULT)
	}
	return 0
}

// saveTerminals records the modes of each standard stream that is a terminal, once.
func (s *Service) saveTerminals() {
	s.termMu.Lock()
	defer s.termMu.Unlock()
	if s.termSaved != nil {
		return
	}
	s.termSaved = map[int][]byte{}
	for _, fd := range s.stdio {
		modes := make([]byte, 36)
		if ioctl(fd, tcgets, unsafe.Pointer(&modes[0])) == nil {
			s.termSaved[fd] = modes
		}
	}
}

// restoreTerminals puts back the modes saveTerminals recorded, standard input's last:
// where the streams are one terminal, its modes are those from before the first change.
func (s *Service) restoreTerminals() {
	s.termMu.Lock()
	defer s.termMu.Unlock()
	for _, fd := range slices.Backward(s.stdio[:]) {
		if modes := s.termSaved[fd]; modes != nil {
			ioctl(fd, tcsetsw, unsafe.Pointer(&modes[0]))
		}
	}
	s.termSaved = nil
}

func ioctl(fd int, req uint64, arg unsafe.Pointer) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg)); e != 0 {
		return e
	}
	return nil
}

func ioctlInt(fd int, req, arg uint64) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg)); e != 0 {
		return e
	}
	return nil
}
