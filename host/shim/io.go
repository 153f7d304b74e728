package shim

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"github.com/containerd/console"
	"github.com/containerd/fifo"
	"golang.org/x/sys/unix"
)

// stdio is where containerd wants a container's standard streams: FIFOs it reads and
// writes (ctr, CRI), a file:// log, or nothing ("").
type stdio struct {
	stdin, stdout, stderr string
	terminal              bool
}

// check refuses what the shim cannot give the container: a binary:// logger.
func (s stdio) check() error {
	for _, p := range []string{s.stdout, s.stderr} {
		if u, err := url.Parse(p); err == nil && u.Scheme != "" && u.Scheme != "file" {
			return fmt.Errorf("output to %s: pith's shim writes a container's output to FIFOs or file:// logs, not to %s:// loggers", p, u.Scheme)
		}
	}
	return nil
}

// taskIO is a started container's streams: what the shim still holds of them.
type taskIO struct {
	console  console.Console // the terminal's master, with a terminal
	stdinW   io.WriteCloser  // the monitor's standard input, fed from containerd's FIFO
	parent   []io.Closer     // the monitor's ends, closed here once it has them
	copies   sync.WaitGroup  // output copied to containerd
	closers  []io.Closer
	stdinMu  sync.Mutex
	stdinEnd bool
}

// open gives cmd the container's streams. Output goes straight to containerd's FIFO or
// file (the monitor writes it itself); input is copied from containerd's FIFO into a
// pipe, whose end the shim can close (CloseIO) where containerd's writer stays open;
// a terminal is a pseudo-terminal whose master the shim copies to and from.
func (s stdio) open(ctx context.Context, cmd *exec.Cmd) (*taskIO, error) {
	t := &taskIO{}
	fail := func(err error) (*taskIO, error) {
		t.Close()
		return nil, err
	}
	if s.terminal {
		master, slavePath, err := console.NewPty()
		if err != nil {
			return fail(err)
		}
		t.console = master
		t.closers = append(t.closers, master)
		// The client's own terminal (ctr's, kubectl's) turns \n into \r\n: this one must
		// not as well, as runc leaves its terminals.
		if err := console.ClearONLCR(master.Fd()); err != nil {
			return fail(err)
		}
		slave, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			return fail(err)
		}
		t.parent = append(t.parent, slave)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setctty, cmd.SysProcAttr.Setpgid = true, true, false
		if s.stdout != "" {
			out, held, err := openOutput(s.stdout)
			if err != nil {
				return fail(err)
			}
			t.closers = append(t.closers, out)
			if held != nil {
				t.closers = append(t.closers, held)
			}
			t.copies.Add(1)
			go func() {
				defer t.copies.Done()
				io.Copy(out, master) // ends with EIO once the monitor and its children are gone
			}()
		}
		if s.stdin != "" {
			in, err := fifo.OpenFifo(ctx, s.stdin, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				return fail(err)
			}
			t.closers = append(t.closers, in)
			go io.Copy(master, in)
		}
		return t, nil
	}
	for _, o := range []struct {
		path string
		to   *io.Writer
	}{{s.stdout, &cmd.Stdout}, {s.stderr, &cmd.Stderr}} {
		if o.path == "" {
			continue // the monitor's is /dev/null
		}
		f, held, err := openOutput(o.path)
		if err != nil {
			return fail(err)
		}
		t.parent = append(t.parent, f)
		if held != nil {
			t.closers = append(t.closers, held)
		}
		*o.to = f
	}
	if s.stdin != "" {
		in, err := fifo.OpenFifo(ctx, s.stdin, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return fail(err)
		}
		r, w, err := os.Pipe()
		if err != nil {
			in.Close()
			return fail(err)
		}
		t.closers = append(t.closers, in)
		t.parent = append(t.parent, r)
		t.stdinW = w
		cmd.Stdin = r
		go func() {
			io.Copy(w, in)
			t.closeStdin()
		}()
	}
	return t, nil
}

// openOutput opens an output stream: containerd's FIFO, which it holds open for reading
// (without O_NONBLOCK a FIFO with no reader would block the shim for good), or a
// file:// log. For a FIFO it also returns a read end for the shim to hold until the
// container ends, as runc's shim does: while containerd restarts, its readers are gone,
// and a write would otherwise end the monitor with SIGPIPE; with one held it waits.
func openOutput(p string) (w, held *os.File, err error) {
	if u, err := url.Parse(p); err == nil && u.Scheme == "file" {
		w, err := os.OpenFile(u.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		return w, nil, err
	}
	w, err = os.OpenFile(p, os.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("the container's output %s: %w", p, err)
	}
	// The monitor writes to it with ordinary, blocking writes.
	if err := unix.SetNonblock(int(w.Fd()), false); err != nil {
		w.Close()
		return nil, nil, err
	}
	if held, err = os.OpenFile(p, os.O_RDONLY|unix.O_NONBLOCK, 0); err != nil {
		w.Close()
		return nil, nil, err
	}
	return w, held, nil
}

// started drops the shim's copies of the monitor's ends, now that it has its own.
func (t *taskIO) started() {
	for _, c := range t.parent {
		c.Close()
	}
	t.parent = nil
}

// Wait waits until the container's output has all been copied to containerd.
func (t *taskIO) Wait() {
	t.copies.Wait()
}

// Close closes what the shim holds of the container's streams.
func (t *taskIO) Close() error {
	t.started()
	t.closeStdin()
	for _, c := range t.closers {
		c.Close()
	}
	return nil
}

func (t *taskIO) closeStdin() {
	t.stdinMu.Lock()
	defer t.stdinMu.Unlock()
	if t.stdinW != nil && !t.stdinEnd {
		t.stdinW.Close()
		t.stdinEnd = true
	}
}

func (t *taskIO) resize(width, height uint32) error {
	return t.console.Resize(console.WinSize{Width: uint16(width), Height: uint16(height)})
}
