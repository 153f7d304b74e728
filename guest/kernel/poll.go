package kernel

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
)

// poll, ppoll, select and pselect6 look at each descriptor's readiness, and while none is
// ready, wait for a change that could make one ready, then look again, until the
// timeout or a signal: any pipe's or AF_UNIX socket's (pollWake), a netstack socket's
// waiter queue, or the monitor's word that pith's standard input has bytes.

// Linux's poll events.
const (
	pollIn   = 0x1
	pollPri  = 0x2
	pollOut  = 0x4
	pollErr  = 0x8
	pollHup  = 0x10
	pollNval = 0x20
)

// pollers are the polls waiting: a change to a pipe or an AF_UNIX socket wakes them all
// (pollWake), each to look again.
var pollers struct {
	mu      sync.Mutex
	waiting map[chan struct{}]struct{}
	n       atomic.Int32 // len(waiting), read without the lock by pollWake
}

// pollWake wakes the polls waiting; it is called on every change of a pipe or an
// AF_UNIX socket, where it costs an atomic load when no poll waits.
func pollWake() {
	if pollers.n.Load() == 0 {
		return
	}
	pollers.mu.Lock()
	for ch := range pollers.waiting {
		select {
		case ch <- struct{}{}:
		default: // woken already
		}
	}
	pollers.mu.Unlock()
}

// watchChanges returns a channel that has a token after a change that could make one of
// fds ready, and a func that stops the watching.
func watchChanges(t *Task, fds [][2]int64) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	pollers.mu.Lock()
	if pollers.waiting == nil {
		pollers.waiting = map[chan struct{}]struct{}{}
	}
	pollers.waiting[ch] = struct{}{}
	pollers.n.Add(1)
	pollers.mu.Unlock()
	var entries []*waiter.Entry
	var queues []*waiter.Queue
	for _, fd := range fds {
		if fd[0] < 0 {
			continue
		}
		if f := t.proc.fd(uint64(fd[0])); f != nil && f.kind == kindSocket {
			e := waiter.NewFunctionEntry(socketEvents, func(waiter.EventMask) {
				select {
				case ch <- struct{}{}:
				default:
				}
			})
			f.sock.wq.EventRegister(&e)
			entries, queues = append(entries, &e), append(queues, f.sock.wq)
		}
	}
	return ch, func() {
		for i, e := range entries {
			queues[i].EventUnregister(e)
		}
		pollers.mu.Lock()
		delete(pollers.waiting, ch)
		pollers.n.Add(-1)
		pollers.mu.Unlock()
	}
}

// fileEvents is f's readiness now, in poll's bits.
func fileEvents(f *file) uint32 {
	switch f.kind {
	case kindPipe:
		f.pipe.mu.Lock()
		defer f.pipe.mu.Unlock()
		return f.pipe.events(f.readEnd)
	case kindSocket:
		return uint32(f.sock.ep.Readiness(socketEvents))
	case kindUnix:
		unixMu.Lock()
		defer unixMu.Unlock()
		return f.unix.events()
	case kindStdout, kindStderr:
		return pollOut
	case kindStdin:
		var m uint32
		if stdinReady() {
			m |= pollIn
		}
		if isTerminal(0) {
			m |= pollOut
		}
		return m
	case kindTier0:
		return 0 // an epoll instance or eventfd: its readiness is tier 0's (not served here)
	}
	return pollIn | pollOut // files, /dev/null and the like
}

// pollFDs waits until one of the descriptors in fds (fd, asked events) is ready, for at
// most timeout (negative: for ever), and returns each one's events and how many are
// ready, or -EINTR / -errRestart for a signal.
func pollFDs(t *Task, fds [][2]int64, timeout time.Duration) ([]uint32, int64) {
	deadline := time.Now().Add(timeout)
	got := make([]uint32, len(fds))
	var changed <-chan struct{}
	stdin := false
	for {
		ready := int64(0)
		for i, fd := range fds {
			got[i] = 0
			if fd[0] < 0 {
				continue
			}
			f := t.proc.fd(uint64(fd[0]))
			if f == nil {
				got[i] = pollNval
			} else {
				got[i] = fileEvents(f) & (uint32(fd[1]) | pollErr | pollHup)
				stdin = stdin || f.kind == kindStdin && uint32(fd[1])&pollIn != 0
			}
			if got[i] != 0 {
				ready++
			}
		}
		if ready > 0 || timeout == 0 || timeout > 0 && !time.Now().Before(deadline) {
			return got, ready
		}
		if changed == nil {
			// Watching starts before the look that follows: a change after that look
			// leaves its token.
			var stop func()
			changed, stop = watchChanges(t, fds)
			defer stop()
			continue
		}
		var stdinNews <-chan struct{}
		if stdin {
			var already bool
			if stdinNews, already, _ = watchHost(0, abi.NotifyStdin); already {
				continue
			}
		}
		var timer *time.Timer
		var expired <-chan time.Time
		if timeout > 0 {
			timer = time.NewTimer(time.Until(deadline))
			expired = timer.C
		}
		woke := t.waitChan(changed, stdinNews, expired)
		if timer != nil {
			timer.Stop()
		}
		if woke == waitSignalled {
			return got, -linux.EINTR // not restarted after a handler, as on Linux
		}
	}
}

// sysPoll serves poll(fds, nfds, timeout in ms).
func sysPoll(t *Task, a [6]uint64) int64 {
	timeout := time.Duration(-1)
	if ms := int32(a[2]); ms >= 0 {
		timeout = time.Duration(ms) * time.Millisecond
	}
	return pollArray(t, a[0], a[1], timeout)
}

// sysPpoll serves ppoll(fds, nfds, timeout timespec, sigmask, size): the mask is not
// applied while waiting.
func sysPpoll(t *Task, a [6]uint64) int64 {
	timeout, e := readTimeout(a[2])
	if e != 0 {
		return e
	}
	return pollArray(t, a[0], a[1], timeout)
}

func pollArray(t *Task, addr, n uint64, timeout time.Duration) int64 {
	if n > 1<<20 {
		return -linux.EINVAL
	}
	raw, ok := appSlice(addr, n*8)
	if !ok {
		return -linux.EFAULT
	}
	fds := make([][2]int64, n)
	for i := range fds {
		fds[i] = [2]int64{int64(int32(binary.LittleEndian.Uint32(raw[8*i:]))), int64(binary.LittleEndian.Uint16(raw[8*i+4:]))}
	}
	got, ready := pollFDs(t, fds, timeout)
	if ready < 0 {
		return ready
	}
	for i := range fds {
		binary.LittleEndian.PutUint16(raw[8*i+6:], uint16(got[i]))
	}
	return ready
}

// readTimeout reads a struct timespec at addr: 0 is no timeout (negative duration).
func readTimeout(addr uint64) (time.Duration, int64) {
	if addr == 0 {
		return -1, 0
	}
	ts, ok := getApp[[2]int64](addr)
	if !ok {
		return 0, -linux.EFAULT
	}
	if ts[0] < 0 || ts[1] < 0 || ts[1] >= 1e9 {
		return 0, -linux.EINVAL
	}
	return time.Duration(ts[0])*time.Second + time.Duration(ts[1]), 0
}

// sysSelect serves select(nfds, readfds, writefds, exceptfds, timeval).
func sysSelect(t *Task, a [6]uint64) int64 {
	timeout := time.Duration(-1)
	if a[4] != 0 {
		tv, ok := getApp[[2]int64](a[4])
		if !ok {
			return -linux.EFAULT
		}
		if tv[0] < 0 || tv[1] < 0 {
			return -linux.EINVAL
		}
		timeout = time.Duration(tv[0])*time.Second + time.Duration(tv[1])*time.Microsecond
	}
	return selectSets(t, a[0], [3]uint64{a[1], a[2], a[3]}, timeout)
}

// sysPselect6 serves pselect6(nfds, readfds, writefds, exceptfds, timespec, sigmask):
// the mask is not applied while waiting.
func sysPselect6(t *Task, a [6]uint64) int64 {
	timeout, e := readTimeout(a[4])
	if e != 0 {
		return e
	}
	return selectSets(t, a[0], [3]uint64{a[1], a[2], a[3]}, timeout)
}

// selectSets waits on the descriptor sets at addrs (read, write, except; 0 for none)
// of nfds bits, and rewrites them with those ready.
func selectSets(t *Task, nfds uint64, addrs [3]uint64, timeout time.Duration) int64 {
	if nfds > 1<<20 {
		return -linux.EINVAL
	}
	words := (nfds + 63) / 64
	var sets [3][]byte
	for i, addr := range addrs {
		if addr == 0 || words == 0 {
			continue
		}
		b, ok := appSlice(addr, words*8)
		if !ok {
			return -linux.EFAULT
		}
		sets[i] = b
	}
	isSet := func(set []byte, fd uint64) bool { return set != nil && set[fd/8]&(1<<(fd%8)) != 0 }
	var fds [][2]int64
	for fd := uint64(0); fd < nfds; fd++ {
		var ev int64
		if isSet(sets[0], fd) {
			ev |= pollIn
		}
		if isSet(sets[1], fd) {
			ev |= pollOut
		}
		if isSet(sets[2], fd) {
			ev |= pollPri
		}
		if ev != 0 {
			if t.proc.fd(fd) == nil {
				return -linux.EBADF
			}
			fds = append(fds, [2]int64{int64(fd), ev})
		}
	}
	got, ready := pollFDs(t, fds, timeout)
	if ready < 0 {
		return ready
	}
	for _, set := range sets {
		clear(set)
	}
	count := int64(0)
	for i, fd := range fds {
		for s, bits := range []uint32{pollIn | pollHup | pollErr, pollOut | pollErr, pollPri} {
			if sets[s] != nil && uint32(fd[1])&bits != 0 && got[i]&bits != 0 {
				sets[s][fd[0]/8] |= 1 << (fd[0] % 8)
				count++
			}
		}
	}
	return count
}
