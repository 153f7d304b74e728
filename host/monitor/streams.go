package monitor

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The app's stdout and stderr are pith's, written from the console ring after the app's
// write has returned. So that a program whose reader went away (`prog | head -1`, a
// subprocess whose pipe its parent closed) meets SIGPIPE and EPIPE on its next write as
// on Linux, instead of pith dying of SIGPIPE later, the monitor watches both streams and
// tells tier 1 when a reader has gone (BootInfo.StreamsGone).

// watchStreams sets StreamsGone for stdout or stderr once its reader has gone, and
// catches SIGPIPE meanwhile, so that the monitor's own writes there answer EPIPE. It
// returns a stop func.
func (m *machine) watchStreams() (stop func()) {
	caught := make(chan os.Signal, 1)
	signal.Notify(caught, unix.SIGPIPE)
	unwatch := watchReaders([]int{1, 2}, func(i int) { m.streamGone(i + 1) })
	return func() {
		unwatch()
		signal.Stop(caught)
	}
}

// watchReaders calls gone(i) once poll reports an error on fds[i] (a pipe whose read end
// has closed), until stop is called. Without a watcher (no pipe to stop it by), a
// write's EPIPE still tells (goneWriter).
func watchReaders(fds []int, gone func(i int)) (stop func()) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return func() {}
	}
	polled := []unix.PollFd{{Fd: int32(p[0]), Events: unix.POLLIN}}
	for _, fd := range fds {
		polled = append(polled, unix.PollFd{Fd: int32(fd)}) // no events: errors and hang-ups only
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for left := len(fds); left > 0; {
			if _, err := unix.Poll(polled, -1); err != nil && err != unix.EINTR {
				return
			}
			if polled[0].Revents != 0 {
				return
			}
			for i := range fds {
				switch r := polled[1+i].Revents; {
				case r&unix.POLLERR != 0:
					gone(i)
					fallthrough
				case r&unix.POLLNVAL != 0: // not open: nothing to tell
					polled[1+i].Fd, left = -1, left-1
				}
			}
		}
	}()
	return func() {
		unix.Close(p[1])
		<-done
		unix.Close(p[0])
	}
}

// streamGone tells tier 1 that the reader of pith's stream fd (1 or 2) has gone.
func (m *machine) streamGone(fd int) {
	atomic.OrUint64(&m.info.StreamsGone, 1<<fd)
}

// goneWriter is a console stream that tells tier 1 when a write finds its reader gone,
// and writes nothing more after that.
type goneWriter struct {
	w  io.Writer
	fd int
	m  *machine
}

func (g goneWriter) Write(b []byte) (int, error) {
	if atomic.LoadUint64(&g.m.info.StreamsGone)&(1<<g.fd) != 0 {
		return 0, unix.EPIPE
	}
	n, err := g.w.Write(b)
	if errors.Is(err, unix.EPIPE) {
		g.m.streamGone(g.fd)
	}
	return n, err
}
