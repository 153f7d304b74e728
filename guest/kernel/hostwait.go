package kernel

import (
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/pithvm/pith/abi"
)

// Waiting for the host: a program a guest started ending, or a pipe to one having bytes
// or room. The goroutine that waits asks the monitor to watch for it (FileNotify) and
// sleeps until the monitor says something it watched happened; one thread here waits
// on tier 0's readiness descriptor for all of them and wakes them all, and each looks
// again. Asking every millisecond instead cost an exit each time: a shell waiting for a
// long-running program kept its vCPU busy.

// hostEvents wakes the goroutines waiting for the host.
var hostEvents struct {
	start sync.Once
	ok    bool // the monitor notifies (FileNotifyAttach answered 0)
	mu    sync.Mutex
	gen   chan struct{} // closed, and replaced, at each notification
}

// awaitHost waits until the monitor has news of handle (FileNotify's flags): the caller
// then looks again, as news may be another's. Where the monitor does not notify, it
// sleeps a millisecond.
func awaitHost(handle, flags uint64) {
	if news, already, _ := watchHost(handle, flags); !already {
		<-news
	}
}

// watchHost asks the monitor to watch handle for flags and returns a channel closed at
// its next news (which may be another's), or already if what was asked is so now.
// Where the monitor does not notify, or cannot watch handle (refused: it knows no such
// handle), the channel closes after hostPoll.
func watchHost(handle, flags uint64) (news <-chan struct{}, already, refused bool) {
	hostEvents.start.Do(startHostEvents)
	if hostEvents.ok {
		hostEvents.mu.Lock()
		gen := hostEvents.gen // before asking: news that comes after the answer closes it
		hostEvents.mu.Unlock()
		switch r := fileRequest(&abi.FileRequest{Op: abi.FileNotify, Handle: handle, Flags: flags}); {
		case r == 0:
			return gen, false, false
		case r == 1:
			return nil, true, false
		default:
			refused = true
		}
	}
	later := make(chan struct{})
	time.AfterFunc(hostPoll, func() { close(later) })
	return later, false, refused
}

// closeWatch is a pump's wait for the other end of its host pipe to close, beside a wait
// for its tier-1 pipe to change: the monitor is asked to watch once per news of it.
type closeWatch struct {
	handle uint64
	news   <-chan struct{} // the monitor's next news, once it watches
}

// wait waits for changed, or for news from the monitor; closed says the other end has
// closed, refused that the monitor cannot watch handle (then it waits for nothing).
func (w *closeWatch) wait(changed <-chan struct{}) (closed, refused bool) {
	if w.news == nil {
		if w.news, closed, refused = watchHost(w.handle, abi.NotifyClosed); closed || refused {
			return closed, refused
		}
	}
	select {
	case <-changed:
	case <-w.news:
		w.news = nil
	}
	return false, false
}

// readyEpoll is a tier-0 epoll instance watching readiness descriptor ready, for a thread
// that waits on it in a call of its own.
func readyEpoll(ready uintptr) (uintptr, bool) {
	ep, _, e := syscall.RawSyscall(syscall.SYS_EPOLL_CREATE1, 0, 0, 0)
	if e != 0 {
		return 0, false
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, ep, syscall.EPOLL_CTL_ADD, ready, uintptr(unsafe.Pointer(&ev)), 0, 0)
	return ep, true
}

// startHostEvents attaches a readiness descriptor for the monitor's notifications and
// starts the thread that waits on it.
func startHostEvents() {
	ready, _, e := syscall.RawSyscall(abi.SysPithReadyFD, 0, 0, 0)
	if e != 0 {
		return
	}
	ep, ok := readyEpoll(ready)
	if !ok {
		syscall.RawSyscall(syscall.SYS_CLOSE, ready, 0, 0)
		return
	}
	if fileRequest(&abi.FileRequest{Op: abi.FileNotifyAttach, Handle: uint64(ready)}) != 0 {
		syscall.RawSyscall(syscall.SYS_CLOSE, ep, 0, 0)
		syscall.RawSyscall(syscall.SYS_CLOSE, ready, 0, 0)
		return
	}
	hostEvents.gen = make(chan struct{})
	hostEvents.ok = true
	go func() {
		runtime.LockOSThread() // the wait blocks its thread in tier 0
		var events [1]syscall.EpollEvent
		for {
			syscall.Syscall6(syscall.SYS_EPOLL_PWAIT, ep, uintptr(unsafe.Pointer(&events[0])), 1, ^uintptr(0), 0, 0)
			// Taken before the wake-up: news after it makes the descriptor readable
			// again, and news before it is looked for by every goroutine woken.
			syscall.RawSyscall(abi.SysPithSetReady, ready, 0, 0)
			hostEvents.mu.Lock()
			close(hostEvents.gen)
			hostEvents.gen = make(chan struct{})
			hostEvents.mu.Unlock()
		}
	}()
}
