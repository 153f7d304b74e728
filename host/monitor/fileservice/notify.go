package fileservice

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
)

// Host notifications (FileNotify): the guest waits for a program it started to end, or
// for a pipe to a program to have bytes or room, by asking once and sleeping until the
// monitor wakes it, instead of asking every millisecond (one exit each: a shell waiting
// for a long-running program kept its vCPU busy).

// notifier tells the guest what it asked about happened: the monitor's (SetNotify).
type notifier struct {
	mu       sync.Mutex
	fire     func()  // sets BootInfo.HostReady and wakes the guest
	watching *uint64 // BootInfo.HostWatches: how many watches are armed
	streams  map[uint64]*streamWatch
}

// stdinWatch is the key of the watch of pith's standard input among the streams' (no
// handle is ever this).
const stdinWatch = ^uint64(0)

// streamWatch is a goroutine polling one stream handle's descriptor.
type streamWatch struct {
	events int16
	cancel int // write end of a pipe that ends the poll
	done   chan struct{}
}

// SetNotify makes FileNotify work: fire is called when something the guest asked about
// has happened (once per request), and *watching counts the requests outstanding.
func (s *Service) SetNotify(fire func(), watching *uint64) {
	n := &s.notify
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fire, n.watching = fire, watching
	atomic.StoreUint64(watching, 0)
}

// done is the end of one watch: the guest is told, then the watch no longer counts.
// After stop, nothing is told: the guest's memory may be gone.
func (n *notifier) done() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fire == nil {
		return
	}
	n.fire()
	atomic.AddUint64(n.watching, ^uint64(0))
}

// stop ends the notifications for good (Close).
func (n *notifier) stop() {
	n.mu.Lock()
	n.fire, n.watching = nil, nil
	n.mu.Unlock()
}

func (s *Service) notifyRequest(c fileCall) int64 {
	r := c.r
	n := &s.notify
	n.mu.Lock()
	watching := n.watching
	n.mu.Unlock()
	if watching == nil {
		return -int64(unix.ENODEV)
	}
	switch r.Flags {
	case abi.NotifyExit:
		sp := s.children[r.Handle]
		if sp == nil {
			return -int64(unix.ECHILD)
		}
		sp.mu.Lock()
		defer sp.mu.Unlock()
		if sp.done {
			return 1
		}
		if !sp.notify {
			sp.notify = true
			atomic.AddUint64(watching, 1)
		}
		return 0
	case abi.NotifyRead, abi.NotifyWrite, abi.NotifyClosed:
		fd, ok := s.streams[r.Handle]
		if !ok {
			return -int64(unix.EBADF)
		}
		var events int16 // NotifyClosed: poll reports an error or hang-up unasked
		switch r.Flags {
		case abi.NotifyRead:
			events = unix.POLLIN
		case abi.NotifyWrite:
			events = unix.POLLOUT
		}
		if ready(fd, events) {
			return 1
		}
		return s.watchStream(r.Handle, fd, events, watching)
	case abi.NotifyStdin:
		fd := -1 // not served: a watch that never ends, as a read of a pipe no one writes
		if s.stdinServed {
			fd = s.stdio[0]
		}
		if ready(fd, unix.POLLIN) {
			return 1
		}
		return s.watchStream(stdinWatch, fd, unix.POLLIN, watching)
	}
	return -int64(unix.EINVAL)
}

// ready polls fd once, without waiting: an error or hang-up counts as ready, since a
// read or write would not wait either.
func ready(fd int, events int16) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: events}}
	k, err := unix.Poll(p, 0)
	return err == nil && k > 0
}

// watchStream starts a goroutine that fires once fd is ready for events, or the handle
// closes (unwatch). One watch a handle: asking again while one waits changes nothing.
func (s *Service) watchStream(h uint64, fd int, events int16, watching *uint64) int64 {
	n := &s.notify
	n.mu.Lock()
	defer n.mu.Unlock()
	if w := n.streams[h]; w != nil {
		if w.events == events {
			return 0
		}
		n.mu.Unlock()
		s.unwatch(h) // asked for the other direction: that one is not needed any more
		n.mu.Lock()
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return Errno(err)
	}
	w := &streamWatch{events: events, cancel: p[1], done: make(chan struct{})}
	if n.streams == nil {
		n.streams = map[uint64]*streamWatch{}
	}
	n.streams[h] = w
	atomic.AddUint64(watching, 1)
	go func() {
		defer close(w.done)
		defer unix.Close(p[0])
		polled := []unix.PollFd{{Fd: int32(fd), Events: events}, {Fd: int32(p[0]), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(polled, -1); err == unix.EINTR {
				continue
			}
			break
		}
		n.mu.Lock()
		if n.streams[h] == w {
			delete(n.streams, h)
		}
		n.mu.Unlock()
		n.done()
	}()
	return 0
}

// unwatch ends the watch of stream handle h, if any, and waits for its goroutine, so
// that h's descriptor may close (and its number be reused) with no poll on it.
func (s *Service) unwatch(h uint64) {
	n := &s.notify
	n.mu.Lock()
	w := n.streams[h]
	delete(n.streams, h)
	n.mu.Unlock()
	if w == nil {
		return
	}
	unix.Write(w.cancel, []byte{0})
	<-w.done
	unix.Close(w.cancel)
}

// stopNotify ends every watch and every notification (Close).
func (s *Service) stopNotify() {
	n := &s.notify
	n.stop()
	n.mu.Lock()
	var hs []uint64
	for h := range n.streams {
		hs = append(hs, h)
	}
	n.mu.Unlock()
	for _, h := range hs {
		s.unwatch(h)
	}
}
