package kernel

import (
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
)

// Terminals. A standard stream is a terminal where pith's own is one on the host: the
// ioctls a program makes on it (isatty's TCGETS, tcsetattr, the window size) are made
// there by the monitor (FileTerminal), so the user's terminal echoes, edits lines or
// goes raw as the program asks. Process groups are tier 1's names (pgrp.go), so the
// terminal's foreground group is whichever the app last named (TIOCSPGRP), its own at
// first: a shell with job control finds itself in the foreground. /dev/tty is the
// terminal standard input is, where it is one.

// Linux's ioctl requests on terminals that tier 1 answers itself, and the generic ones
// any descriptor takes.
const (
	tcgets     = 0x5401
	tiocsctty  = 0x540e
	tiocgpgrp  = 0x540f
	tiocspgrp  = 0x5410
	tiocnotty  = 0x5422
	tiocgsid   = 0x5429
	fionbio    = 0x5421
	fionclex   = 0x5450
	fioclex    = 0x5451
	termiosLen = 36
)

var terminals struct {
	mu     sync.Mutex
	known  [3]bool // whether is[n] has been asked
	is     [3]bool // stream n is a terminal
	fg     int32   // the foreground process group TIOCSPGRP named; 0: the app's own
	answer []byte  // where the monitor answers isTerminal's TCGETS (on the heap: hostBuffer)
}

// isTerminal reports whether standard stream n (0-2) is a terminal: the monitor is asked
// once (the streams are pith's, fixed for the guest's life).
func isTerminal(n int) bool {
	terminals.mu.Lock()
	defer terminals.mu.Unlock()
	if !terminals.known[n] {
		if terminals.answer == nil {
			terminals.answer = hostBuffer(termiosLen)
		}
		r := abi.FileRequest{Op: abi.FileTerminal, Handle: uint64(n), Flags: tcgets,
			Buf: uint64(uintptr(unsafe.Pointer(&terminals.answer[0]))), Len: termiosLen}
		terminals.is[n] = fileRequest(&r) == 0
		terminals.known[n] = true
	}
	return terminals.is[n]
}

// streamOf is the standard stream f is, or -1: /dev/tty is standard input's terminal.
func streamOf(f *file) int {
	switch f.kind {
	case kindStdin, kindStdout, kindStderr:
		return int(f.kind - kindStdin)
	}
	return -1
}

// genericIoctl serves the ioctls Linux answers for any descriptor, whatever it is: it
// reports whether req was one.
func genericIoctl(f *file, req, arg uint64) (int64, bool) {
	switch req {
	case fioclex, fionclex:
		f.cloexec = req == fioclex
		return 0, true
	case fionbio:
		on, ok := getApp[int32](arg)
		if !ok {
			return -linux.EFAULT, true
		}
		if on != 0 {
			f.flags |= syscall.O_NONBLOCK
		} else {
			f.flags &^= syscall.O_NONBLOCK
		}
		return 0, true
	}
	return 0, false
}

// terminalIoctl serves ioctl req on standard stream n.
func terminalIoctl(t *Task, n int, req, arg uint64) int64 {
	if !isTerminal(n) {
		return -linux.ENOTTY
	}
	pgid, sid := t.proc.group()
	switch req {
	case tiocgpgrp:
		terminals.mu.Lock()
		fg := terminals.fg
		terminals.mu.Unlock()
		if fg == 0 {
			fg = pgid
		}
		if !putApp(arg, fg) {
			return -linux.EFAULT
		}
		return 0
	case tiocspgrp:
		fg, ok := getApp[int32](arg)
		if !ok {
			return -linux.EFAULT
		}
		if fg <= 0 {
			return -linux.EINVAL
		}
		terminals.mu.Lock()
		terminals.fg = fg
		terminals.mu.Unlock()
		return 0
	case tiocgsid:
		if !putApp(arg, sid) {
			return -linux.EFAULT
		}
		return 0
	case tiocsctty, tiocnotty:
		return 0 // the terminal is the guest's controlling terminal, whatever it asks
	}
	size, _, ok := abi.TerminalRequest(req)
	if !ok {
		return -linux.ENOTTY
	}
	r := abi.FileRequest{Op: abi.FileTerminal, Handle: uint64(n), Flags: req}
	if size == 0 {
		r.Offset = arg
	} else {
		if _, ok := appSlice(arg, uint64(size)); !ok {
			return -linux.EFAULT
		}
		r.Buf, r.Len = arg, uint64(size)
	}
	return fileRequest(&r)
}

// openTerminal opens /dev/tty: standard input's terminal, where it is one; else ENXIO,
// Linux's answer to a process with no controlling terminal.
func openTerminal(f *file) int64 {
	if !isTerminal(0) {
		return -linux.ENXIO
	}
	f.kind = kindStdin
	return 0
}

// terminalOutput is the stream a write to a terminal standard input goes out through:
// standard error or output, whichever is a terminal (the same one, nearly always).
func terminalOutput() *file {
	for _, n := range []int{2, 1} {
		if isTerminal(n) {
			return &file{kind: kindStdin + fileKind(n)}
		}
	}
	return nil
}

// stdinReady reports whether a read of standard input would not wait.
func stdinReady() bool {
	r := abi.FileRequest{Op: abi.FileStdin, Flags: abi.FileStdinPoll}
	return fileRequest(&r) > 0
}

// terminalStat is what fstat says of a standard stream that is a terminal: a
// pseudo-terminal's device (136:0, /dev/pts/0), or /dev/tty's (5:0) where opened so.
func terminalStat(path string) syscall.Stat_t {
	if path == "/dev/tty" {
		return syscall.Stat_t{Mode: syscall.S_IFCHR | 0o666, Nlink: 1, Blksize: 4096, Dev: devtmpfsDev,
			Ino: 11, Rdev: unix.Mkdev(5, 0)}
	}
	return syscall.Stat_t{Mode: syscall.S_IFCHR | 0o620, Nlink: 1, Blksize: 1024, Dev: devptsDev,
		Ino: 3, Rdev: unix.Mkdev(136, 0), Uid: abi.AppUID, Gid: 5 /* tty */}
}
