package kernel

import (
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/pithvm/pith/guest/linux"
)

// pipe is a Linux pipe kept in tier 1: a buffer, its readers and its writers. A read of
// an empty pipe blocks the reading task's goroutine (and so its thread) until a write or
// the last writer's close.
type pipe struct {
	mu      sync.Mutex
	cond    sync.Cond
	buf     []byte
	readers int
	writers int
	size    int    // its capacity (F_SETPIPE_SZ): pipeCapacity until changed
	ino     uint64 // its number, for fstat
	// forkPumps of the readers are goroutines passing what is written on to children
	// made by fork (pumpToFork), which read only while no descriptor here does.
	forkPumps int
	// onUnread, if set, is called when the last reader goes: in a fork's child, the
	// pipe standing for an inherited read end closes its bridge at once, so that its
	// parent sends nothing more that no one here would read (fork.go).
	onUnread func()
	// news, if set, is closed at the next change (changes).
	news chan struct{}
	// readies are the readiness descriptors in tier 0 of the descriptors an epoll
	// instance watches (file.ready), by end (pipeEnd); levels are the events each end's
	// have, as last told.
	readies [2][]uintptr
	levels  [2]uint32
}

// pipeEnd indexes pipe.readies and levels: 1 for the read end, 0 for the write end.
func pipeEnd(readEnd bool) int {
	if readEnd {
		return 1
	}
	return 0
}

// pipes numbers the pipes made.
var pipes atomic.Uint64

// pipeCapacity is a pipe's capacity until F_SETPIPE_SZ changes it, as Linux's 16 pages;
// maxPipeSize is the most it may be made (Linux's /proc/sys/fs/pipe-max-size).
const (
	pipeCapacity = 64 << 10
	maxPipeSize  = 1 << 20
)

// newPipe is a pipe with one reference to each end, as pipe2 makes.
func newPipe() *pipe {
	p := emptyPipe()
	p.readers, p.writers = 1, 1
	return p
}

// emptyPipe is a pipe no one holds yet.
func emptyPipe() *pipe {
	p := &pipe{ino: pipes.Add(1), size: pipeCapacity}
	p.cond.L = &p.mu
	return p
}

func (p *pipe) read(t *Task, b []byte, nonblock bool) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.buf) == 0 {
		if p.writers == 0 {
			return 0
		}
		if nonblock {
			return -linux.EAGAIN
		}
		if !t.waitOn(&p.cond) {
			return -errRestart
		}
	}
	n := copy(b, p.buf)
	p.buf = p.buf[n:]
	p.changed()
	return int64(n)
}

func (p *pipe) write(t *Task, b []byte, nonblock bool) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	written := 0
	for written < len(b) {
		if p.readers == 0 {
			if written > 0 {
				return int64(written)
			}
			return -linux.EPIPE
		}
		room := p.size - len(p.buf) // below 0 after an unread into a full pipe
		if room <= 0 {
			if nonblock {
				if written > 0 {
					return int64(written)
				}
				return -linux.EAGAIN
			}
			if !t.waitOn(&p.cond) {
				return sentOr(written, -errRestart)
			}
			continue
		}
		n := min(room, len(b)-written)
		p.buf = append(p.buf, b[written:written+n]...)
		written += n
		p.changed()
	}
	return int64(written)
}

// events is the readiness of the pipe's read end or write end, as Linux's pipe_poll
// answers it. p.mu is held.
func (p *pipe) events(readEnd bool) uint32 {
	var m uint32
	if readEnd {
		if len(p.buf) > 0 {
			m |= linux.EPOLLIN | linux.EPOLLRDNORM
		}
		if p.writers == 0 {
			m |= linux.EPOLLHUP
		}
		return m
	}
	if len(p.buf) < p.size {
		m |= linux.EPOLLOUT | linux.EPOLLWRNORM
	}
	if p.readers == 0 {
		m |= linux.EPOLLERR
	}
	return m
}

// changed wakes whoever waits for a change of the pipe: its tasks, polls, epoll
// instances and fork pumps. p.mu is held.
func (p *pipe) changed() {
	p.cond.Broadcast()
	pollWake()
	for end, fds := range p.readies {
		if len(fds) == 0 {
			continue
		}
		if r := p.events(end == 1); r != p.levels[end] {
			p.levels[end] = r
			for _, fd := range fds {
				setReady(fd, r)
			}
		}
	}
	if p.news != nil {
		close(p.news)
		p.news = nil
	}
}

// changes is a channel closed at the pipe's next change, for a goroutine that waits for
// it and for something else too (pumpToFork). p.mu is held.
func (p *pipe) changes() <-chan struct{} {
	if p.news == nil {
		p.news = make(chan struct{})
	}
	return p.news
}

// readyFD is descriptor f's readiness descriptor in tier 0, made the first time epoll is
// asked about f, as for an AF_UNIX socket (unixSocket.readyFD).
func (p *pipe) readyFD(f *file) (uintptr, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f.ready == 0 {
		fd, e := openReady()
		if e != 0 {
			return 0, e
		}
		f.ready = fd
		p.watch(fd, f.readEnd)
	}
	return f.ready, 0
}

// watch has readiness descriptor fd follow the events of one end of the pipe, from
// those it has now. p.mu is held.
func (p *pipe) watch(fd uintptr, readEnd bool) {
	end := pipeEnd(readEnd)
	if len(p.readies[end]) == 0 {
		p.levels[end] = p.events(readEnd)
	}
	p.readies[end] = append(p.readies[end], fd)
	setReady(fd, p.levels[end])
}

// unwatch stops readiness descriptor fd following the pipe's end. p.mu is held.
func (p *pipe) unwatch(fd uintptr, readEnd bool) {
	end := pipeEnd(readEnd)
	p.readies[end] = slices.DeleteFunc(p.readies[end], func(r uintptr) bool { return r == fd })
}

// release drops one reference to an end of the pipe, closing the descriptor's readiness
// descriptor (ready, if not 0).
func (p *pipe) release(readEnd bool, ready uintptr) {
	p.mu.Lock()
	if ready != 0 {
		p.unwatch(ready, readEnd)
		closeReady(ready)
	}
	if readEnd {
		p.readers--
	} else {
		p.writers--
	}
	unread := readEnd && p.readers == 0 && p.onUnread != nil
	p.changed()
	p.mu.Unlock()
	if unread {
		p.onUnread()
	}
}

// unread puts b back at the front of the pipe, for its other readers.
func (p *pipe) unread(b []byte) {
	p.mu.Lock()
	p.buf = append(append([]byte(nil), b...), p.buf...)
	p.changed()
	p.mu.Unlock()
}

// retain adds a reference to an end (dup). An end that had none has its first again
// (a fork's bridge takes one of an end the app closed meanwhile): the other end's events
// change.
func (p *pipe) retain(readEnd bool) {
	p.mu.Lock()
	n := &p.writers
	if readEnd {
		n = &p.readers
	}
	*n++
	if *n == 1 {
		p.changed()
	}
	p.mu.Unlock()
}

func sysPipe2(t *Task, a [6]uint64) int64 {
	fds, ok := appSlice(a[0], 8)
	if !ok {
		return -linux.EFAULT
	}
	clear(fds) // a fault answers EFAULT before any descriptor exists
	p := newPipe()
	cloexec := a[1]&syscall.O_CLOEXEC != 0
	r := t.proc.installFD(&file{kind: kindPipe, pipe: p, readEnd: true, flags: a[1] & syscall.O_NONBLOCK, cloexec: cloexec})
	w := t.proc.installFD(&file{kind: kindPipe, pipe: p, flags: syscall.O_WRONLY | a[1]&syscall.O_NONBLOCK, cloexec: cloexec})
	*(*int32)(unsafe.Pointer(&fds[0])) = int32(r)
	*(*int32)(unsafe.Pointer(&fds[4])) = int32(w)
	return 0
}

// resize serves F_SETPIPE_SZ: the capacity becomes n rounded up to a power of two pages,
// as on Linux, and is what it answers; it cannot hold less than the pipe does (EBUSY).
func (p *pipe) resize(n uint64) int64 {
	if n > maxPipeSize {
		return -linux.EPERM // past pipe-max-size, as for a process without CAP_SYS_RESOURCE
	}
	size := 4096
	for uint64(size) < n {
		size <<= 1
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > size {
		return -linux.EBUSY
	}
	p.size = size
	p.changed()
	return int64(size)
}
