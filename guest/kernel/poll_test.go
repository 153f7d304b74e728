package kernel

import (
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/guest/linux"
)

// A pipe's ends are ready as Linux's are: the read end once there is data or no
// writer (POLLHUP), the write end while there is room, with POLLERR once no reader.
func TestPollPipe(t *testing.T) {
	pp := newPipe()
	r, w := &file{kind: kindPipe, pipe: pp, readEnd: true}, &file{kind: kindPipe, pipe: pp}
	p := &Process{fds: map[int]*file{3: r, 4: w, 5: {kind: kindNull}}}
	task := &Task{proc: p}
	check := func(what string, fds [][2]int64, want []uint32, wantReady int64) {
		t.Helper()
		got, ready := pollFDs(task, fds, 0)
		if ready != wantReady || len(got) != len(want) {
			t.Fatalf("%s: %v, %d ready; want %v, %d", what, got, ready, want, wantReady)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: fd %d: events %#x, want %#x", what, fds[i][0], got[i], want[i])
			}
		}
	}
	all := int64(pollIn | pollOut)
	check("empty", [][2]int64{{3, all}, {4, all}, {9, all}, {-1, all}}, []uint32{0, pollOut, pollNval, 0}, 2)
	pp.buf = append(pp.buf, 'x')
	check("data", [][2]int64{{3, pollIn}, {4, pollIn}}, []uint32{pollIn, 0}, 1)
	pp.buf = make([]byte, pipeCapacity)
	check("full", [][2]int64{{4, pollOut}, {5, pollIn}}, []uint32{0, pollIn}, 1)
	pp.writers, pp.readers = 0, 0
	// Linux's pipe_poll: a full pipe has no POLLOUT, reader or not.
	check("ends closed", [][2]int64{{3, pollIn}, {4, pollOut}}, []uint32{pollIn | pollHup, pollErr}, 2)
}

// An epoll instance watching a pipe end has its events through the descriptor's own
// readiness descriptor, kept as Linux's pipe_poll answers as the pipe changes, so that
// Go's netpoller can wait on a pipe (os.Pipe with deadlines).
func TestPipeReadinessForEpoll(t *testing.T) {
	tier0 := useFakeTier0(t)
	task := newTestTask()
	fds := mem(8)
	if r := call(task, unix.SYS_PIPE2, addrOf(fds), unix.O_NONBLOCK); r != 0 {
		t.Fatalf("pipe2: %d", r)
	}
	r, w := int64(binary.LittleEndian.Uint32(fds)), int64(binary.LittleEndian.Uint32(fds[4:]))
	const in, out = linux.EPOLLIN | linux.EPOLLRDNORM, linux.EPOLLOUT | linux.EPOLLWRNORM
	check := func(what string, fd int64, want uint32) {
		t.Helper()
		if got := tier0.events(task, fd); got != want {
			t.Errorf("%s: fd %d's events %#x, want %#x", what, fd, got, want)
		}
	}
	check("empty", r, 0)
	check("empty", w, out)
	write(task, w, "hello")
	check("written", r, in)
	if s, n := read(task, r, 16); s != "hello" || n != 5 {
		t.Fatalf("read %q, %d", s, n)
	}
	check("read empty", r, 0)
	big := mem(pipeCapacity)
	if n := call(task, unix.SYS_WRITE, uint64(w), addrOf(big), pipeCapacity); n != pipeCapacity {
		t.Fatalf("filling the pipe wrote %d", n)
	}
	check("full", w, 0)
	check("full", r, in)
	read(task, r, pipeCapacity) // all of it: Linux counts room in pages
	check("room again", w, out)
	write(task, w, "more")

	d := call(task, unix.SYS_DUP, uint64(r))
	check("dup", d, in)
	dupReady := task.proc.fd(uint64(d)).ready
	if dupReady == task.proc.fd(uint64(r)).ready {
		t.Fatal("a dup shares its original's readiness descriptor")
	}
	call(task, unix.SYS_CLOSE, uint64(d))
	if !tier0.closed[dupReady] {
		t.Error("closing the dup left its readiness descriptor open")
	}
	call(task, unix.SYS_CLOSE, uint64(w))
	check("writer closed", r, in|linux.EPOLLHUP)
	for {
		if _, n := read(task, r, 1<<16); n <= 0 {
			break
		}
	}
	check("drained, no writer", r, linux.EPOLLHUP)

	fds = mem(8)
	call(task, unix.SYS_PIPE2, addrOf(fds), 0)
	r, w = int64(binary.LittleEndian.Uint32(fds)), int64(binary.LittleEndian.Uint32(fds[4:]))
	check("new pipe", w, out)
	call(task, unix.SYS_CLOSE, uint64(r))
	check("reader closed", w, out|linux.EPOLLERR)
	if len(tier0.stray) > 0 {
		t.Errorf("readiness descriptors %v were told of events after they closed", tier0.stray)
	}
}

// A fork's child replaces each pipe by a new one (Process.forked): a readiness descriptor
// that moves to the new pipe follows it alone, whatever becomes of the old.
func TestPipeReadinessMovesToANewPipe(t *testing.T) {
	tier0 := useFakeTier0(t)
	old := newPipe()
	f := &file{kind: kindPipe, pipe: old, readEnd: true}
	ready, _ := old.readyFD(f)
	old.write(nil, []byte("copied"), true)
	np := emptyPipe()
	np.retain(true)
	np.retain(false)
	old.mu.Lock()
	old.unwatch(ready, true)
	old.mu.Unlock()
	f.ready = 0
	old.release(true, 0)
	old.release(false, 0) // the old pipe's writer goes: it would say HUP
	np.mu.Lock()
	np.watch(ready, true)
	np.mu.Unlock()
	old.unread([]byte("x"))
	if got := tier0.level[ready]; got != 0 {
		t.Fatalf("moved to an empty pipe: events %#x, want none", got)
	}
	np.write(nil, []byte("new"), true)
	if got := tier0.level[ready]; got != linux.EPOLLIN|linux.EPOLLRDNORM {
		t.Errorf("after a write to the new pipe: events %#x, want EPOLLIN", got)
	}
}

// Bytes a fork's pump puts back (unread) can take a pipe past its capacity: it is full
// then, and a write waits (here: EAGAIN) instead of failing on a negative room.
func TestPipeOverfullAfterUnread(t *testing.T) {
	pp := newPipe()
	pp.buf = make([]byte, pipeCapacity)
	pp.unread([]byte("back"))
	if n := pp.write(nil, []byte("more"), true); n != -11 { // EAGAIN
		t.Errorf("write to an overfull pipe = %d, want EAGAIN", n)
	}
	buf := make([]byte, 4)
	if n := pp.read(nil, buf, true); n != 4 || string(buf) != "back" {
		t.Errorf("read = %d %q, want the bytes put back first", n, buf)
	}
}

// A waiting poll wakes for a change to a pipe it watches, and otherwise waits out its
// timeout; it leaves nothing watching behind.
func TestPollWaitsForAChange(t *testing.T) {
	pp := newPipe()
	p := &Process{fds: map[int]*file{3: {kind: kindPipe, pipe: pp, readEnd: true}}}
	task := &Task{proc: p}
	fds := [][2]int64{{3, pollIn}}
	go func() {
		time.Sleep(50 * time.Millisecond)
		pp.write(nil, []byte("x"), false)
	}()
	start := time.Now()
	if got, ready := pollFDs(task, fds, 10*time.Second); ready != 1 || got[0] != pollIn || time.Since(start) > 5*time.Second {
		t.Fatalf("poll for a write 50 ms later: %v, %d ready after %v", got, ready, time.Since(start))
	}
	pp.read(nil, make([]byte, 1), true)
	start = time.Now()
	if got, ready := pollFDs(task, fds, 100*time.Millisecond); ready != 0 || got[0] != 0 || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("poll of an empty pipe for 100 ms: %v, %d ready after %v", got, ready, time.Since(start))
	}
	if n := pollers.n.Load(); n != 0 {
		t.Errorf("%d polls still watching after both ended", n)
	}
}

// F_SETPIPE_SZ makes a pipe hold a power of two pages, never less than it holds
// (EBUSY), at most pipe-max-size (EPERM); F_GETPIPE_SZ says how much; what is no pipe
// answers EBADF.
func TestPipeSize(t *testing.T) {
	useFakeTier0(t)
	task := newTestTask()
	fds := mem(8)
	call(task, unix.SYS_PIPE2, addrOf(fds), unix.O_NONBLOCK)
	r, w := binary.LittleEndian.Uint32(fds), binary.LittleEndian.Uint32(fds[4:])
	if got := call(task, unix.SYS_FCNTL, uint64(r), unix.F_GETPIPE_SZ); got != pipeCapacity {
		t.Errorf("a new pipe's size: %d, want %d", got, pipeCapacity)
	}
	if got := call(task, unix.SYS_FCNTL, uint64(w), unix.F_SETPIPE_SZ, 5000); got != 8192 {
		t.Errorf("F_SETPIPE_SZ 5000: %d, want 8192", got)
	}
	big := mem(pipeCapacity)
	if n := call(task, unix.SYS_WRITE, uint64(w), addrOf(big), pipeCapacity); n != 8192 {
		t.Errorf("a write into an 8 KiB pipe took %d", n)
	}
	if got := call(task, unix.SYS_FCNTL, uint64(r), unix.F_SETPIPE_SZ, 1); got != -linux.EBUSY {
		t.Errorf("shrinking below what it holds: %d, want EBUSY", got)
	}
	if got := call(task, unix.SYS_FCNTL, uint64(r), unix.F_SETPIPE_SZ, maxPipeSize+1); got != -linux.EPERM {
		t.Errorf("past pipe-max-size: %d, want EPERM", got)
	}
	task.proc.fds[9] = &file{kind: kindNull}
	if got := call(task, unix.SYS_FCNTL, 9, unix.F_GETPIPE_SZ); got != -linux.EBADF {
		t.Errorf("F_GETPIPE_SZ of /dev/null: %d, want EBADF", got)
	}
	if got := call(task, unix.SYS_LSEEK, 9, 5, 0); got != 0 {
		t.Errorf("lseek of /dev/null: %d, want 0, as Linux", got)
	}
}
