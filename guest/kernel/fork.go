package kernel

import (
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
)

// Fork without exec. The child is a new unikernel whose memory starts as a copy of this
// one's (tier 0's sysFork and the monitor's fork.go copy the whole guest); it resumes in
// this function with SysPithFork answering 0, as the thread that forked, alone. What
// lives outside guest memory cannot be copied: host files are the monitor's, which the
// copy's monitor is given under the same handles, and a pipe is tier 1's, in memory, so
// each pipe end the child inherits is bridged through a host pipe: a goroutine here
// moves bytes between it and the pipe, and one in the child between it and a new pipe
// that takes the old one's place in the child's descriptors.

// forkMu makes forks one at a time, and none while a timer posts its signal (itimer.go):
// a copy of the guest must not catch a signal on its way.
var forkMu sync.RWMutex

// selfPID and parentPID are the app's process ID and its parent's, as getpid and
// getppid answer them (tier 0 keeps them too): abi.AppPID and abi.AppPPID, but in a
// fork's child the ID its parent gave it and the parent's.
var selfPID, parentPID atomic.Int32

func init() {
	selfPID.Store(abi.AppPID)
	parentPID.Store(abi.AppPPID)
}

// forkBridge is one end of a pipe the child inherits.
type forkBridge struct {
	pp      *pipe
	readEnd bool   // the child reads the pipe
	ours    uint64 // this guest's end of the host pipe
	theirs  uint64 // the child's end
}

func fork(t *Task, flags, ctid uint64) int64 {
	p := t.proc
	if p.vfork != nil {
		return -linux.ENOSYS
	}
	forkMu.Lock()
	defer forkMu.Unlock()
	p.forking.Store(true)
	defer p.forking.Store(false)
	type end struct {
		pp      *pipe
		readEnd bool
	}
	var bridges []*forkBridge
	seen := map[end]bool{}
	p.mu.Lock()
	for _, f := range p.fds {
		if f.kind == kindPipe && !seen[end{f.pipe, f.readEnd}] {
			seen[end{f.pipe, f.readEnd}] = true
			bridges = append(bridges, &forkBridge{pp: f.pipe, readEnd: f.readEnd})
		}
	}
	p.mu.Unlock()
	closeBridges := func() {
		for _, b := range bridges {
			for _, h := range []uint64{b.ours, b.theirs} {
				if h != 0 {
					fileRequest(&abi.FileRequest{Op: abi.FileClose, Handle: h})
				}
			}
		}
	}
	handles := hostBuffer(8 * (len(bridges) + 1))
	for i, b := range bridges {
		h := fileRequest(&abi.FileRequest{Op: abi.FilePipe})
		if h < 0 {
			closeBridges()
			return h
		}
		b.ours, b.theirs = uint64(h), uint64(h)+1 // the child writes into the pipe
		if b.readEnd {
			b.ours, b.theirs = b.theirs, b.ours
		}
		*(*uint64)(unsafe.Pointer(&handles[8*i])) = b.theirs
	}
	pid := lastChildPID.Add(1)
	req := &abi.FileRequest{Op: abi.FileFork, Buf: uint64(uintptr(unsafe.Pointer(&handles[0]))), Len: uint64(8 * len(bridges))}
	r, _, _ := syscall.RawSyscall(abi.SysPithFork, uintptr(unsafe.Pointer(req)), 0, 0)
	handle := int64(r)
	if handle == 0 {
		return p.forked(t, pid, bridges, flags, ctid)
	}
	if handle < 0 {
		closeBridges()
		return handle
	}
	for _, b := range bridges {
		b.pp.retain(b.readEnd)
		if b.readEnd {
			go pumpToFork(b.pp, b.ours)
		} else {
			go pumpOut(b.pp)(b.ours)
		}
	}
	p.mu.Lock()
	if p.children == nil {
		p.children = map[int32]*child{}
	}
	p.children[pid] = &child{handle: uint64(handle)}
	p.mu.Unlock()
	go waitChild(p, pid, uint64(handle))
	return int64(pid)
}

// forked is the child's side of fork: the other threads go, the children are its
// parent's, and each pipe end it inherited becomes a new pipe bridged to its parent's.
func (p *Process) forked(t *Task, pid int32, bridges []*forkBridge, flags, ctid uint64) int64 {
	parentPID.Store(selfPID.Load())
	selfPID.Store(pid)
	syscall.RawSyscall(abi.SysPithSetPID, uintptr(pid), uintptr(parentPID.Load()), 0)
	setFastAnswer(syscall.SYS_GETPID, uint32(pid))
	setFastAnswer(syscall.SYS_GETPPID, uint32(parentPID.Load()))
	p.dropOtherTasks(t)
	p.alarm.stop(false) // as Linux's fork: the child's timers are disarmed or gone, and
	p.timers.stopAll()  // no signal is pending for it
	p.mu.Lock()
	t.pending = 0
	p.children = nil
	replace := map[*pipe][2]*pipe{} // old pipe -> its new [write end, read end]
	for _, b := range bridges {
		np := replace[b.pp]
		i := 0
		if b.readEnd {
			i = 1
		}
		np[i] = emptyPipe()
		replace[b.pp] = np
	}
	var old, watched []*file
	for n, f := range p.fds {
		if f.kind != kindPipe {
			continue
		}
		np := replace[f.pipe][0]
		if f.readEnd {
			np = replace[f.pipe][1]
		}
		g := *f
		g.pipe = np
		np.retain(f.readEnd)
		p.fds[n] = &g
		old = append(old, f)
		if f.ready != 0 {
			// An epoll instance watches it: its readiness descriptor goes on with the
			// new pipe, once the bridges hold their ends, and no longer hears of the
			// old one (whose copied pumps end here and release it).
			f.pipe.mu.Lock()
			f.pipe.unwatch(f.ready, f.readEnd)
			f.pipe.mu.Unlock()
			f.ready = 0
			watched = append(watched, &g)
		}
	}
	p.mu.Unlock()
	for _, f := range old {
		f.release()
	}
	for _, b := range bridges {
		if b.readEnd {
			np := replace[b.pp][1]
			np.retain(false)
			handle := b.theirs
			np.onUnread = func() { fileRequest(&abi.FileRequest{Op: abi.FileClose, Handle: handle}) }
			go pumpOut(np)(b.theirs)
		} else {
			np := replace[b.pp][0]
			np.retain(true)
			go pumpIn(np)(b.theirs)
		}
	}
	for _, f := range watched {
		f.pipe.mu.Lock()
		f.pipe.watch(f.ready, f.readEnd)
		f.pipe.mu.Unlock()
	}
	if flags&linux.CLONE_CHILD_SETTID != 0 {
		storeTID(ctid, t.tid)
	}
	return 0
}

// pumpToFork copies what is written into the app's pipe to a child made by fork, whose
// end is handle. It takes bytes only while no descriptor here reads the pipe: a child
// and its parent both holding the read end is the moment after fork, before one of them
// closes it, and the parent must not lose what it reads to the child. It stops once the
// child's end has closed.
func pumpToFork(pp *pipe, handle uint64) {
	pp.mu.Lock()
	pp.forkPumps++
	pp.mu.Unlock()
	defer func() {
		pp.mu.Lock()
		pp.forkPumps--
		pp.mu.Unlock()
		pp.release(true, 0)
	}()
	defer fileRequest(&abi.FileRequest{Op: abi.FileClose, Handle: handle})
	buf := hostBuffer(64 << 10)
	childEnd := closeWatch{handle: handle}
	for {
		pp.mu.Lock()
		alone, empty, ended := pp.readers == pp.forkPumps, len(pp.buf) == 0, pp.writers == 0
		var changed <-chan struct{}
		if !alone || empty && !ended {
			changed = pp.changes()
		}
		pp.mu.Unlock()
		if changed != nil {
			// Nothing to pass on yet: wait for the pipe to change or the child's end to
			// close, each told once (a loop asking the monitor made an exit a millisecond).
			// Refused: the handle is not this guest's (a copy of this goroutine in a later
			// fork's child, whose monitor was not given it).
			if closed, refused := childEnd.wait(changed); closed || refused {
				return
			}
			continue
		}
		n := pp.read(nil, buf, true)
		if n == 0 {
			return // every writer has closed: the child reads the end of the pipe
		}
		if n < 0 {
			continue
		}
		if w := writeStream(handle, buf[:n]); w < int(n) {
			pp.unread(buf[w:n]) // the child has closed its end: the bytes are still the pipe's
			return
		}
	}
}
