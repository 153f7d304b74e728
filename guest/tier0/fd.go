package tier0

import (
	"sync/atomic"
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
	"github.com/pithvm/pith/guest/x86"
)

// File descriptors tier 0 serves for tier 1: the console (0-2), eventfds and epoll
// instances, which is what the Go runtime's netpoller needs to sleep with a timeout and be
// woken (netpollBreak writes its eventfd), and readiness descriptors: tier 1 keeps a
// socket itself and tells tier 0 which events it has, so that the app's epoll reports
// them with no round trip through tier 1.

const (
	maxFDs     = 1024
	maxWatches = 1024
)

// File kinds.
const (
	fdFree = iota
	fdConsole
	fdEventfd
	fdEpoll
	fdReady
)

type fdEntry struct {
	kind  uint32
	count uint64 // eventfd: the counter; readiness descriptor: its ready events
}

var fds [maxFDs]fdEntry

// ready holds the readiness descriptors' events, which tier 1 changes without a call
// (abi.ReadyTable says how), so tier 0 changes them only atomically too.
var ready abi.ReadyTable

// waitStamp is the value markWaiting's last pass gave the marks it set (never 0).
var waitStamp uint32

// readyMask indexes ready's arrays.
const readyMask = abi.MaxReadyFDs - 1

const _ = uint(maxFDs - abi.MaxReadyFDs) // every descriptor has its entry

// epollWatch is one EPOLL_CTL_ADD registration. The watches of every epoll instance
// share one table: a program's netpoller watches all its sockets from one instance.
type epollWatch struct {
	used    bool
	epfd    int32
	fd      int32
	events  uint32
	pending uint32 // edge-triggered: events that arrived since the last report
	data    uint64
}

var (
	watches   [maxWatches]epollWatch
	watchHigh int32 // watches[watchHigh:] are unused
)

//go:nosplit
func fdAt(fd int64) *fdEntry {
	if fd < 0 || fd >= maxFDs {
		return nil
	}
	e := &fds[uint64(fd)&(maxFDs-1)]
	if e.kind == fdFree {
		return nil
	}
	return e
}

//go:nosplit
func watchAt(i int32) *epollWatch { return &watches[uint32(i)&(maxWatches-1)] }

//go:nosplit
func initFDs() {
	for i := 0; i < 3; i++ {
		fds[i].kind = fdConsole
	}
	info().ReadyTable = uint64(uintptr(unsafe.Pointer(&ready)))
}

// allocReadyFD makes a readiness descriptor, with no events ready.
//
//go:nosplit
func allocReadyFD() int64 {
	fd := allocFD(fdReady)
	if fd >= 0 {
		i := uint64(fd) & readyMask
		atomic.StoreUint32(&ready.Levels[i], 0)
		atomic.StoreUint32(&ready.Edges[i], 0)
		atomic.StoreUint32(&ready.Waiting[i], 0)
	}
	return fd
}

//go:nosplit
func allocFD(kind uint32) int64 {
	for i := int64(0); i < maxFDs; i++ {
		e := &fds[uint64(i)&(maxFDs-1)]
		if e.kind == fdFree {
			*e = fdEntry{kind: kind}
			return i
		}
	}
	return -linux.EMFILE
}

// epoll_event mirrors struct epoll_event (packed on x86-64: 12 bytes).
const epollEventSize = 12

//go:nosplit
func sysEventfd2(initval, flags uint64) int64 {
	fd := allocFD(fdEventfd)
	if fd >= 0 {
		fds[uint64(fd)&(maxFDs-1)].count = initval
	}
	return fd
}

//go:nosplit
func sysEpollCreate1(flags uint64) int64 { return allocFD(fdEpoll) }

// findWatch is the index of epfd's watch of fd, or -1.
//
//go:nosplit
func findWatch(epfd, fd int32) int32 {
	for i := int32(0); i < watchHigh; i++ {
		if w := watchAt(i); w.used && w.epfd == epfd && w.fd == fd {
			return i
		}
	}
	return -1
}

//go:nosplit
func sysEpollCtl(epfd, op, fd, event uint64) int64 {
	ep := fdAt(int64(epfd))
	if ep == nil || ep.kind != fdEpoll || fdAt(int64(fd)) == nil {
		return -linux.EBADF
	}
	idx := findWatch(int32(epfd), int32(fd))
	switch op {
	case linux.EPOLL_CTL_ADD, linux.EPOLL_CTL_MOD:
		if !mapped(uintptr(event), epollEventSize) {
			return -linux.EFAULT
		}
		if idx < 0 {
			if op == linux.EPOLL_CTL_MOD {
				return -linux.ENOENT
			}
			for idx = 0; idx < maxWatches && watchAt(idx).used; idx++ {
			}
			if idx == maxWatches {
				return -linux.ENOSPC // as Linux past max_user_watches
			}
			if idx >= watchHigh {
				watchHigh = idx + 1
			}
		} else if op == linux.EPOLL_CTL_ADD {
			return -linux.EEXIST
		}
		w := watchAt(idx)
		w.used, w.epfd, w.fd = true, int32(epfd), int32(fd)
		w.events = *(*uint32)(x86.Pointer(uintptr(event)))
		w.data = *(*uint64)(x86.Pointer(uintptr(event) + 4))
		w.pending = ^uint32(0) // what is ready now is reported once, edge-triggered or not
		markWaiting()          // a thread may already sleep on epfd
		epollWake()            // and the descriptor be ready already, which wakes it, as in Linux
		return 0
	case linux.EPOLL_CTL_DEL:
		if idx < 0 {
			return -linux.ENOENT
		}
		watchAt(idx).used = false
		return 0
	}
	return -linux.EINVAL
}

// dropWatches removes the watches of fd and those of fd's epoll instance: Linux drops a
// watch when its file closes.
//
//go:nosplit
func dropWatches(fd int32) {
	for i := int32(0); i < watchHigh; i++ {
		if w := watchAt(i); w.fd == fd || w.epfd == fd {
			w.used = false
		}
	}
}

// ready is the events w reports now, and takes them from its pending edges where it is
// edge-triggered.
//
//go:nosplit
func (w *epollWatch) ready(f *fdEntry) uint32 {
	var ev uint32
	switch f.kind {
	case fdEventfd:
		if f.count != 0 {
			ev = w.events & linux.EPOLLIN
		}
	case fdReady:
		mask := w.events | linux.EPOLLERR | linux.EPOLLHUP
		ev = atomic.LoadUint32(&ready.Levels[uint32(w.fd)&readyMask]) & mask
		if w.events&linux.EPOLLET != 0 {
			// An edge of any event it watches reports all that are ready then, as Linux
			// does (data arriving on a writable socket: EPOLLIN|EPOLLOUT), once.
			if w.pending&mask == 0 {
				ev = 0
			}
			w.pending = 0
		}
	}
	return ev
}

// epollCollect writes ready events of epfd into events (max entries) and counts them.
//
//go:nosplit
func epollCollect(epfd int32, events uintptr, max int32) int64 {
	if fdAt(int64(epfd)) == nil {
		return -linux.EBADF
	}
	takeEdges()
	n := int32(0)
	for i := int32(0); i < watchHigh && n < max; i++ {
		w := watchAt(i)
		if !w.used || w.epfd != epfd {
			continue
		}
		f := fdAt(int64(w.fd))
		if f == nil {
			continue
		}
		ev := w.ready(f)
		if ev == 0 {
			continue
		}
		p := events + uintptr(n)*epollEventSize
		*(*uint32)(x86.Pointer(p)) = ev
		*(*uint64)(x86.Pointer(p + 4)) = w.data
		n++
	}
	return int64(n)
}

//go:nosplit
func sysEpollPwait(epfd, events, max, timeoutMs uint64) int64 {
	ep := fdAt(int64(epfd))
	if ep == nil || ep.kind != fdEpoll {
		return -linux.EBADF
	}
	if int32(max) <= 0 {
		return -linux.EINVAL
	}
	if !mapped(uintptr(events), uintptr(int32(max))*epollEventSize) {
		return -linux.EFAULT
	}
	n := epollCollect(int32(epfd), uintptr(events), int32(max))
	if n != 0 || int32(timeoutMs) == 0 {
		return n
	}
	t := current()
	t.epollFD = int32(epfd)
	t.epollEvents = uintptr(events)
	t.epollMax = int32(max)
	var deadline uint64
	if int32(timeoutMs) > 0 {
		deadline = deadlineAfter(int64(int32(timeoutMs)) * 1_000_000)
	}
	block(waitEpoll, deadline)
	// Tier 1 raises events without a call unless Waiting says a thread may sleep on
	// them: say so, then look once more (abi.ReadyTable).
	markWaiting()
	if n := epollCollect(int32(epfd), uintptr(events), int32(max)); n != 0 {
		t.state, t.wait, t.deadline = threadRunnable, waitNone, 0
		markWaiting()
		return n
	}
	return 0
}

// takeEdges gives the edges tier 1 raised (abi.ReadyTable) to every watch of their
// descriptors.
//
//go:nosplit
func takeEdges() {
	if atomic.SwapUint32(&ready.Pending, 0) == 0 {
		return
	}
	for i := int32(0); i < watchHigh; i++ {
		w := watchAt(i)
		if !w.used || w.fd < 0 || w.fd >= maxFDs {
			continue
		}
		// The first watch of a descriptor takes its edges for all of them.
		bits := atomic.SwapUint32(&ready.Edges[uint32(w.fd)&readyMask], 0)
		if bits == 0 {
			continue
		}
		for j := i; j < watchHigh; j++ {
			if o := watchAt(j); o.used && o.fd == w.fd {
				o.pending |= bits
			}
		}
	}
}

// markWaiting sets ready.Waiting for the descriptors that an epoll instance with a
// blocked thread watches (a superset while a call is under way) and clears the others',
// then fences, so that tier 1 raising an event either sees the mark or has its event
// seen by the collection that follows. Tier 1 reads the marks without the lock, so a
// sleeper's mark never passes through 0: each pass stamps the marked ones with a new
// value first and clears only what it did not stamp.
//
//go:nosplit
func markWaiting() {
	waitStamp++
	if waitStamp == 0 {
		waitStamp = 1
	}
	for k := int32(0); k < liveLimit; k++ {
		t := threadAt(k)
		if t.state != threadBlocked || t.wait != waitEpoll {
			continue
		}
		for i := int32(0); i < watchHigh; i++ {
			if w := watchAt(i); w.used && w.epfd == t.epollFD && w.fd >= 0 && w.fd < maxFDs {
				atomic.StoreUint32(&ready.Waiting[uint32(w.fd)&readyMask], waitStamp)
			}
		}
	}
	for i := int32(0); i < watchHigh; i++ {
		if w := watchAt(i); w.used && w.fd >= 0 && w.fd < maxFDs {
			if m := &ready.Waiting[uint32(w.fd)&readyMask]; atomic.LoadUint32(m) != waitStamp {
				atomic.StoreUint32(m, 0)
			}
		}
	}
	atomic.AddUint32(&ready.Pending, 0) // a locked instruction: a full fence
}

// epollWake wakes the threads waiting in epoll, which collect what is ready.
//
//go:nosplit
func epollWake() {
	for i := int32(0); i < liveLimit; i++ {
		t := threadAt(i)
		if t.state != threadBlocked || t.wait != waitEpoll {
			continue
		}
		if !mapped(t.epollEvents, uintptr(t.epollMax)*epollEventSize) {
			wake(i, -linux.EFAULT) // the app unmapped the buffer while it waited
			continue
		}
		if n := epollCollect(t.epollFD, t.epollEvents, t.epollMax); n != 0 {
			wake(i, n)
		}
	}
}

// sysSetReady sets the ready events of readiness descriptor fd (SysPithSetReady). Events
// that become ready are edges for the edge-triggered watches, and wake epoll.
//
//go:nosplit
func sysSetReady(fd, events, or uint64) int64 {
	f := fdAt(int64(fd))
	if f == nil || f.kind != fdReady {
		return -linux.EBADF
	}
	if or == abi.ReadyWake {
		epollWake()
		return 0
	}
	level := &ready.Levels[fd&readyMask]
	var old, now uint32
	for {
		old, now = atomic.LoadUint32(level), uint32(events)
		if or != 0 {
			now |= old
		}
		if atomic.CompareAndSwapUint32(level, old, now) {
			break
		}
	}
	if rising := now &^ old; rising != 0 {
		for i := int32(0); i < watchHigh; i++ {
			if w := watchAt(i); w.used && w.fd == int32(fd) {
				w.pending |= rising
			}
		}
		epollWake()
	}
	return 0
}

//go:nosplit
func fdRead(fd, buf, n uint64) int64 {
	f := fdAt(int64(fd))
	if f == nil {
		return -linux.EBADF
	}
	switch f.kind {
	case fdConsole:
		return 0 // stdin is empty for now: end of file
	case fdEventfd:
		if n < 8 || !mapped(uintptr(buf), 8) {
			return -linux.EINVAL
		}
		if f.count == 0 {
			return -linux.EAGAIN
		}
		*(*uint64)(x86.Pointer(uintptr(buf))) = f.count
		f.count = 0
		return 8
	}
	return -linux.EINVAL
}

//go:nosplit
func fdWrite(fd, buf, n uint64) int64 {
	f := fdAt(int64(fd))
	if f == nil {
		return -linux.EBADF
	}
	if !mapped(uintptr(buf), uintptr(n)) {
		return -linux.EFAULT
	}
	switch f.kind {
	case fdConsole:
		consoleWrite(int(fd), uintptr(buf), uintptr(n))
		return int64(n)
	case fdEventfd:
		if n < 8 {
			return -linux.EINVAL
		}
		f.count += *(*uint64)(x86.Pointer(uintptr(buf)))
		epollWake()
		return 8
	}
	return -linux.EINVAL
}

//go:nosplit
func fdClose(fd uint64) int64 {
	f := fdAt(int64(fd))
	if f == nil {
		return -linux.EBADF
	}
	f.kind = fdFree
	dropWatches(int32(fd))
	return 0
}
