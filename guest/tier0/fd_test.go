package tier0

import (
	"sync/atomic"
	"testing"

	"github.com/pithvm/pith/abi"
)

// Edges tier 1 raised in the table reach every watch of their descriptor once, and
// Waiting marks exactly the descriptors an instance with a blocked thread watches.
func TestReadyTableEdgesAndWaiting(t *testing.T) {
	defer func() {
		watches, watchHigh, threads, liveLimit, ready = [maxWatches]epollWatch{}, 0, [maxThreads]thread{}, 0, abi.ReadyTable{}
	}()
	const epA, epB, sock, other = 3, 4, 5, 6
	watches[0] = epollWatch{used: true, epfd: epA, fd: sock}
	watches[1] = epollWatch{used: true, epfd: epA, fd: other}
	watches[2] = epollWatch{used: true, epfd: epB, fd: sock}
	watchHigh = 3

	atomic.OrUint32(&ready.Edges[sock], 1)
	atomic.StoreUint32(&ready.Pending, 1)
	takeEdges()
	if watches[0].pending != 1 || watches[2].pending != 1 || watches[1].pending != 0 {
		t.Fatalf("pending after the edge: %d %d %d, want 1 0 1", watches[0].pending, watches[1].pending, watches[2].pending)
	}
	if ready.Edges[sock] != 0 || ready.Pending != 0 {
		t.Fatalf("the edge was not taken: edges %d, pending %d", ready.Edges[sock], ready.Pending)
	}
	watches[0].pending, watches[2].pending = 0, 0
	takeEdges() // nothing new: nothing given again
	if watches[0].pending != 0 {
		t.Fatal("an edge was given twice")
	}

	threads[0] = thread{state: threadBlocked, wait: waitEpoll, epollFD: epB}
	liveLimit = 1
	markWaiting()
	if ready.Waiting[sock] == 0 || ready.Waiting[other] != 0 {
		t.Fatalf("waiting with a thread blocked on instance B: sock %d, other %d; want 1, 0", ready.Waiting[sock], ready.Waiting[other])
	}
	threads[0].state, threads[0].wait = threadRunnable, waitNone
	markWaiting()
	if ready.Waiting[sock] != 0 {
		t.Fatal("waiting stays marked after the thread woke")
	}
}

// Tier 1 reads the marks without tier 0's lock: while a thread sleeps, its descriptor's
// mark is never 0, however often tier 0 recomputes the marks for others' sake.
func TestWaitingMarkNeverDropsUnderASleeper(t *testing.T) {
	defer func() {
		watches, watchHigh, threads, liveLimit, ready = [maxWatches]epollWatch{}, 0, [maxThreads]thread{}, 0, abi.ReadyTable{}
	}()
	const ep, sock = 3, 5
	watches[0] = epollWatch{used: true, epfd: ep, fd: sock}
	for i := 1; i < 500; i++ { // other sockets: a pass takes a while
		watches[i] = epollWatch{used: true, epfd: ep, fd: int32(10 + i)}
	}
	watchHigh = 500
	threads[0] = thread{state: threadBlocked, wait: waitEpoll, epollFD: ep}
	liveLimit = 1
	markWaiting()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 2000; i++ {
			markWaiting()
		}
	}()
	zeros := 0
	for {
		select {
		case <-done:
			if zeros != 0 {
				t.Fatalf("the sleeper's mark read 0 %d times while tier 0 recomputed the marks", zeros)
			}
			return
		default:
			if atomic.LoadUint32(&ready.Waiting[sock]) == 0 {
				zeros++
			}
		}
	}
}

// An edge-triggered watch reports, on an edge of any event it watches, every event
// ready then, once: data arriving on a writable socket is EPOLLIN|EPOLLOUT, as in Linux.
func TestEdgeReportsAllReadyEvents(t *testing.T) {
	defer func() { ready = abi.ReadyTable{} }()
	const in, out = 1, 4
	f := &fdEntry{kind: fdReady}
	w := &epollWatch{used: true, fd: 5, events: in | out | 1<<31 /* EPOLLET */}
	ready.Levels[5] = in | out
	w.pending = in
	if ev := w.ready(f); ev != in|out {
		t.Fatalf("the edge reported %#x, want EPOLLIN|EPOLLOUT", ev)
	}
	if ev := w.ready(f); ev != 0 {
		t.Fatalf("without a new edge it reported %#x again", ev)
	}
	w.pending = 0x100 // an event it does not watch: no edge for it
	if ev := w.ready(f); ev != 0 {
		t.Fatalf("an unwatched event's edge reported %#x", ev)
	}
}
