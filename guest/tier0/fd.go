package tier0

import (
	"github.com/pithvm/pith/guest/linux"
	"github.com/pithvm/pith/guest/x86"
)

// File descriptors tier 0 serves for tier 1: the console (0-2), eventfds and epoll
// instances, which is what the Go runtime's netpoller needs to sleep with a timeout and be
// woken (netpollBreak writes its eventfd).

const (
	maxFDs        = 64
	maxEpollWatch = 16
)

// File kinds.
const (
	fdFree = iota
	fdConsole
	fdEventfd
	fdEpoll
)

// epollWatch mirrors one EPOLL_CTL_ADD registration.
type epollWatch struct {
	fd     int32
	events uint32
	data   uint64
}

type fdEntry struct {
	kind    uint32
	count   uint64 // eventfd counter
	watches [maxEpollWatch]epollWatch
	nwatch  int32
}

var fds [maxFDs]fdEntry

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
func initFDs() {
	for i := 0; i < 3; i++ {
		fds[i].kind = fdConsole
	}
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

const (
	epollIn     = 0x1
	epollCtlAdd = 1
	epollCtlDel = 2
	epollCtlMod = 3
)

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

//go:nosplit
func sysEpollCtl(epfd, op, fd, event uint64) int64 {
	ep := fdAt(int64(epfd))
	if ep == nil || ep.kind != fdEpoll || fdAt(int64(fd)) == nil {
		return -linux.EBADF
	}
	idx := int32(-1)
	for i := int32(0); i < ep.nwatch; i++ {
		if ep.watches[uint32(i)&(maxEpollWatch-1)].fd == int32(fd) {
			idx = i
		}
	}
	switch op {
	case epollCtlAdd, epollCtlMod:
		if !mapped(uintptr(event), epollEventSize) {
			return -linux.EFAULT
		}
		if idx < 0 {
			if op == epollCtlMod {
				return -linux.ENOENT
			}
			if ep.nwatch >= maxEpollWatch {
				return -linux.ENOMEM
			}
			idx = ep.nwatch
			ep.nwatch++
		}
		w := &ep.watches[uint32(idx)&(maxEpollWatch-1)]
		w.fd = int32(fd)
		w.events = *(*uint32)(x86.Pointer(uintptr(event)))
		w.data = *(*uint64)(x86.Pointer(uintptr(event) + 4))
		return 0
	case epollCtlDel:
		if idx < 0 {
			return -linux.ENOENT
		}
		ep.nwatch--
		ep.watches[uint32(idx)&(maxEpollWatch-1)] = ep.watches[uint32(ep.nwatch)&(maxEpollWatch-1)]
		return 0
	}
	return -linux.EINVAL
}

// epollCollect writes ready events of epfd into events (max entries) and counts them.
//
//go:nosplit
func epollCollect(epfd int32, events uintptr, max int32) int64 {
	ep := fdAt(int64(epfd))
	if ep == nil {
		return -linux.EBADF
	}
	n := int32(0)
	for i := int32(0); i < ep.nwatch && n < max; i++ {
		w := &ep.watches[uint32(i)&(maxEpollWatch-1)]
		f := fdAt(int64(w.fd))
		if f == nil || f.kind != fdEventfd || f.count == 0 || w.events&epollIn == 0 {
			continue
		}
		p := events + uintptr(n)*epollEventSize
		*(*uint32)(x86.Pointer(p)) = epollIn
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
	return 0
}

// eventfdSignalled wakes the threads waiting in epoll, which collect what is ready.
//
//go:nosplit
func eventfdSignalled() {
	for i := int32(0); i < liveLimit; i++ {
		t := threadAt(i)
		if t.state != threadBlocked || t.wait != waitEpoll {
			continue
		}
		if !mapped(t.epollEvents, uintptr(t.epollMax)*epollEventSize) {
			wake(i, -linux.EFAULT) // the app unmapped the buffer while it waited
			continue
		}
		wake(i, epollCollect(t.epollFD, t.epollEvents, t.epollMax))
	}
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
		eventfdSignalled()
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
	return 0
}
