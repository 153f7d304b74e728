package kernel

import (
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
)

// Other programs. A unikernel holds one app, but apps start others: Go's os/exec, and
// the tests that run their own binary again, use clone(CLONE_VM|CLONE_VFORK) and then
// execve. The vfork child runs here as a task sharing the parent's memory, with its own
// descriptor table, while the parent waits; at execve the monitor starts the program as
// a unikernel of its own (another pith run, sharing this one's /tmp, mounts and working
// directory), its standard streams joined to the child's: pith's own, /dev/null, a host
// file, or a pipe that a goroutine here copies to or from. wait4 and waitid report how
// it ended. Only descriptors 0, 1 and 2 reach the new program.

const cloneVfork = 0x4000

// lastChildPID numbers children apart from tier 0's thread IDs, which are reused.
var lastChildPID atomic.Int32

func init() { lastChildPID.Store(100000) }

// vforkChild is what a vfork child's process has besides its descriptors.
type vforkChild struct {
	parent  *Process
	pid     int32
	resumed chan struct{} // closed when the parent may go on: at execve or exit
	ended   bool          // it ran a program or exited
}

// child is a process this one started, as wait4 sees it.
type child struct {
	done   bool
	status uint32               // a Linux wait status
	usage  [abi.RusageSize]byte // its struct rusage, once done: its pith's on the host
	handle uint64               // the monitor's, once the program runs
	pgid   int32                // the process group setpgid gave it; 0: its parent's
}

func vfork(t *Task, stack uint64) int64 {
	parent := t.proc
	cp := &Process{tasks: map[int32]*Task{}, exe: parent.exe, cwd: parent.cwd,
		unsupported: map[uint64]bool{}, fds: map[int]*file{}}
	parent.mu.Lock()
	cp.sigaction = parent.sigaction
	cp.umask = parent.umask
	cp.pgid, cp.sid = parent.pgid, parent.sid
	for n, f := range parent.fds {
		cp.fds[n] = f.dup()
	}
	parent.mu.Unlock()
	cp.vfork = &vforkChild{parent: parent, resumed: make(chan struct{})}
	c, err := newTask(cp)
	if err != nil {
		cp.dropFiles()
		return -linux.EAGAIN
	}
	c.cloneCPU(t, stack)
	pid := lastChildPID.Add(1)
	cp.vfork.pid = pid
	parent.mu.Lock()
	if parent.children == nil {
		parent.children = map[int32]*child{}
	}
	parent.children[pid] = &child{}
	parent.mu.Unlock()
	c.start(&cp.wg, nil)
	<-cp.vfork.resumed
	return int64(pid)
}

// dropFiles closes a vfork child's descriptors. Host files and tier 0's objects stay
// open: the parent holds them too.
func (p *Process) dropFiles() {
	p.mu.Lock()
	fds := p.fds
	p.fds = map[int]*file{}
	p.mu.Unlock()
	for _, f := range fds {
		f.release() // outside p.mu: an AF_UNIX socket's last close may close descriptors its messages carried
	}
}

// childEnded records how a vfork child or the program it started ended, for wait4.
func (p *Process) childEnded(pid int32, status uint32, usage []byte) {
	p.mu.Lock()
	c := p.children[pid]
	if c == nil { // a fork's child, whose parent's children are not its own
		p.mu.Unlock()
		return
	}
	c.done, c.status = true, status
	copy(c.usage[:], usage)
	if p.childCond.L == nil {
		p.childCond.L = &p.mu
	}
	p.childCond.Broadcast()
	p.mu.Unlock()
	p.postProcess(linux.SIGCHLD)
}

// vforkExit ends a vfork child that did not get as far as running a program, with a
// Linux wait status.
func (p *Process) vforkExit(status uint32) {
	p.endVfork(func() { p.vfork.parent.childEnded(p.vfork.pid, status, nil) })
}

// endVfork ends a vfork child, at execve or exit, once: its tasks stop, its descriptors
// close, then (after ended, if set) the parent goes on.
func (p *Process) endVfork(ended func()) {
	v := p.vfork
	p.mu.Lock()
	for _, t := range p.tasks {
		t.exited = true
	}
	first := !v.ended
	v.ended = true
	p.mu.Unlock()
	if !first {
		return
	}
	p.dropFiles()
	if ended != nil {
		ended()
	}
	close(v.resumed)
}

// appStrings reads a NULL-terminated array of strings from app memory.
func appStrings(addr uint64) ([]string, bool) {
	var out []string
	for total := 0; addr != 0; addr += 8 {
		s, ok := getApp[uint64](addr)
		if !ok {
			return nil, false
		}
		if s == 0 {
			return out, true
		}
		str, ok := appStringMax(s, 1<<20-total)
		if !ok {
			return nil, false
		}
		total += len(str) + 1
		out = append(out, str)
	}
	return out, true
}

func sysExecve(t *Task, a [6]uint64) int64 {
	p := t.proc
	name, ok := appString(a[0])
	argv, ok2 := appStrings(a[1])
	envp, ok3 := appStrings(a[2])
	if !ok || !ok2 || !ok3 {
		return -linux.EFAULT
	}
	path, e := p.absPath(atFDCWD, name)
	if e != 0 {
		return e
	}
	if len(argv) == 0 {
		argv = []string{name}
	}
	if path, argv, e = interpreted(p, name, path, argv); e != 0 {
		return e
	}
	open := path
	if path == p.exe {
		open = "/proc/self/exe" // the app again: its binary may lie outside the guest's view
	}
	req := newSpawnRequest()
	var pumps []func(handle uint64)
	p.mu.Lock()
	for n := range 3 {
		f := p.fds[n]
		switch {
		case n == 2 && f != nil && f.kind == kindPipe && !f.readEnd && p.fds[1] != nil && p.fds[1].kind == kindPipe &&
			p.fds[1].pipe == f.pipe && !p.fds[1].readEnd:
			req.Stdio[n] = abi.SpawnLikeStdout // one host pipe for both, one pump
		case f == nil || f.kind == kindNull || f.kind == kindZero || f.kind == kindRandom:
			req.Stdio[n] = abi.SpawnNull
		case f.kind == kindStdin || f.kind == kindStdout || f.kind == kindStderr:
			req.Stdio[n] = abi.SpawnStdin + uint64(f.kind-kindStdin)
		case f.kind == kindHost:
			req.Stdio[n], req.Handle[n] = abi.SpawnFile, f.handle
		case f.kind == kindPipe:
			var pump func(uint64)
			req.Stdio[n], pump = spawnPipe(f)
			pumps = append(pumps, pump)
		default:
			req.Stdio[n] = abi.SpawnNull
		}
	}
	inheritedPaths, inheritedPumps := p.inheritedFiles(req)
	p.mu.Unlock()
	var strs []byte
	for _, s := range append(append(append([]string{open, p.cwd, path}, argv...), envp...), inheritedPaths...) {
		strs = append(append(strs, s...), 0)
	}
	req.Strings, req.StringsLen = uint64(uintptr(unsafe.Pointer(&strs[0]))), uint64(len(strs))
	req.Argc, req.Envc = uint64(len(argv)), uint64(len(envp))
	req.Umask = uint64(p.creationMask())
	r := abi.FileRequest{Op: abi.FileSpawn, Buf: uint64(uintptr(unsafe.Pointer(req))), Len: uint64(unsafe.Sizeof(*req))}
	handle := fileRequest(&r)
	runtime.KeepAlive(strs) // referenced by address only
	// The pipes' pumps take the references retained above, also when the start failed.
	i := 0
	for n := range 3 {
		if req.Stdio[n] == abi.SpawnPipeIn || req.Stdio[n] == abi.SpawnPipeOut {
			go pumps[i](req.Handle[n])
			i++
		}
	}
	for n, pump := range inheritedPumps {
		if pump != nil {
			go pump(req.Inherited[n].Handle)
		}
	}
	if handle < 0 {
		return handle
	}
	v := p.vfork
	if v == nil {
		p.replacedBy(t, uint64(handle))
		return 0
	}
	v.parent.mu.Lock()
	v.parent.children[v.pid].handle = uint64(handle)
	v.parent.mu.Unlock()
	go waitChild(v.parent, v.pid, uint64(handle))
	p.endVfork(nil)
	return 0
}

// inheritedFiles lists in req the descriptors above 2 a started program inherits: the
// host files and pipes p has open without close-on-exec, lowest first, up to
// abi.SpawnMaxInherited. It returns their guest paths, which follow envp in the
// request's strings, and for each pipe the pump that copies between it and the host
// pipe the monitor makes (nil for a file). Sockets and tier 1's other objects above 2 are
// not passed (docs/architecture.md, "Known gaps"). p.mu is held.
func (p *Process) inheritedFiles(req *abi.SpawnRequest) (paths []string, pumps []func(handle uint64)) {
	fds := make([]int, 0, len(p.fds))
	for fd, f := range p.fds {
		if fd > 2 && f != nil && (f.kind == kindHost || f.kind == kindPipe) && !f.cloexec {
			fds = append(fds, fd)
		}
	}
	slices.Sort(fds)
	for _, fd := range fds[:min(len(fds), abi.SpawnMaxInherited)] {
		f := p.fds[fd]
		const openOnly = syscall.O_CLOEXEC | syscall.O_CREAT | syscall.O_EXCL | syscall.O_TRUNC | syscall.O_NOCTTY
		in := abi.SpawnFD{FD: uint32(fd), Flags: uint32(f.flags &^ openOnly), Kind: abi.SpawnFile, Handle: f.handle}
		var pump func(uint64)
		if f.kind == kindPipe {
			in = abi.SpawnFD{FD: uint32(fd)}
			in.Kind, pump = spawnPipe(f)
		}
		req.Inherited[req.NInherited] = in
		req.NInherited++
		paths = append(paths, f.path)
		pumps = append(pumps, pump)
	}
	return paths, pumps
}

// spawnPipe passes the pipe end f to a program being started: its abi.SpawnPipeIn or
// SpawnPipeOut, and the pump that copies between the end, of which it takes a reference,
// and the host pipe the monitor makes (its handle is the pump's argument).
func spawnPipe(f *file) (kind uint64, pump func(handle uint64)) {
	f.pipe.retain(f.readEnd)
	if f.readEnd {
		return abi.SpawnPipeIn, pumpIn(f.pipe)
	}
	return abi.SpawnPipeOut, pumpOut(f.pipe)
}

// replacedBy is execve outside a vfork child: the program runs as a unikernel of its
// own, as there, and this process, its other threads gone, only waits for it, passes it
// the signals pith is sent, and ends as it ends. It does not return.
func (p *Process) replacedBy(t *Task, handle uint64) {
	p.dropOtherTasks(t)
	p.execHandle.Store(handle) // the signals pith is sent, and the alarm's, go to the program
	p.timers.stopAll()         // POSIX timers do not survive execve; an alarm does (expire)
	switch st := waitProgram(handle, nil); {
	case st < 0:
		p.exit(127)
	case st&0x7f != 0:
		p.killedBy(int(st & 0x7f))
	default:
		p.exit(int(st >> 8))
	}
}

// dropOtherTasks ends every thread of p but t, as execve and a fork's child do: they
// run no more app code and take no more calls.
func (p *Process) dropOtherTasks(t *Task) {
	var others []*Task
	p.mu.Lock()
	for _, o := range p.tasks {
		if o != t {
			o.exited = true
			others = append(others, o)
		}
	}
	p.mu.Unlock()
	for _, o := range others {
		kick(o)
	}
}

// newSpawnRequest allocates a request on the heap, where the monitor's answer cannot be
// lost to a stack move (hostBuffer).
//
//go:noinline
func newSpawnRequest() *abi.SpawnRequest { return new(abi.SpawnRequest) }

// hostPoll is how long a goroutine that follows a started program or a fork's copy
// sleeps between looks where the monitor does not tell it (awaitHost); each look is
// one exit to the monitor.
const hostPoll = time.Millisecond

// pumpOut copies what the program writes into the app's pipe, until the program's end
// closes, or nothing here reads the pipe any more.
func pumpOut(pp *pipe) func(handle uint64) {
	return func(handle uint64) {
		defer pp.release(false, 0)
		if handle == 0 {
			return
		}
		defer fileRequest(&abi.FileRequest{Op: abi.FileClose, Handle: handle})
		buf := hostBuffer(64 << 10)
		for {
			pp.mu.Lock()
			unread := pp.readers == 0
			pp.mu.Unlock()
			if unread {
				return // the program's next write fails with EPIPE, as it would on Linux
			}
			r := abi.FileRequest{Op: abi.FileRead, Handle: handle, Buf: uint64(uintptr(unsafe.Pointer(&buf[0]))), Len: uint64(len(buf))}
			n := fileRequest(&r)
			if n == -linux.EAGAIN {
				awaitHost(handle, abi.NotifyRead)
				continue
			}
			if n <= 0 || pp.write(nil, buf[:n], false) < 0 {
				return
			}
		}
	}
}

// outPumps counts the pumpIns running: what the app wrote before it exits is passed on
// before the guest ends (drainPipes).
var outPumps sync.WaitGroup

// pumpIn copies what the app writes into its pipe to the program. It ends when the
// program's end of the host pipe closes, even with nothing to copy: its read end of the
// app's pipe goes, so that a writer there sees the reader gone (EPOLLERR, EPIPE) as on
// Linux when the program has exited (asyncio's pipe transports wait for it).
func pumpIn(pp *pipe) func(handle uint64) {
	outPumps.Add(1)
	return func(handle uint64) {
		defer outPumps.Done()
		defer pp.release(true, 0)
		if handle == 0 {
			return
		}
		defer fileRequest(&abi.FileRequest{Op: abi.FileClose, Handle: handle})
		buf := hostBuffer(64 << 10)
		end := closeWatch{handle: handle}
		watch := true // false where the monitor cannot watch the handle: wait for data alone
		for {
			pp.mu.Lock()
			var changed <-chan struct{}
			if watch && len(pp.buf) == 0 && pp.writers > 0 {
				changed = pp.changes()
			}
			pp.mu.Unlock()
			if changed != nil {
				closed, refused := end.wait(changed)
				if closed {
					return
				}
				watch = !refused && hostEvents.ok // else the monitor never tells: wait for data alone
				continue
			}
			n := pp.read(nil, buf, watch)
			if n == -linux.EAGAIN {
				continue
			}
			if n <= 0 {
				return
			}
			if writeStream(handle, buf[:n]) < int(n) {
				return
			}
		}
	}
}

// writeStream writes b (a hostBuffer's) to a host pipe handle, waiting while it is full,
// and answers how much it wrote: less than all if the pipe failed (its reader has gone).
func writeStream(handle uint64, b []byte) int {
	written := 0
	for written < len(b) {
		r := abi.FileRequest{Op: abi.FileWrite, Handle: handle, Buf: uint64(uintptr(unsafe.Pointer(&b[written]))), Len: uint64(len(b) - written)}
		m := fileRequest(&r)
		if m == -linux.EAGAIN {
			awaitHost(handle, abi.NotifyWrite)
			continue
		}
		if m <= 0 {
			break
		}
		written += int(m)
	}
	return written
}

// waitChild waits for the program a child started to end.
func waitChild(parent *Process, pid int32, handle uint64) {
	usage := hostBuffer(abi.RusageSize)
	parent.childEnded(pid, uint32(waitProgram(handle, usage)), usage)
}

// waitProgram waits for the program the monitor runs as handle to end, and answers its
// Linux wait status, or a negative errno; its struct rusage goes to usage, if not nil
// (from hostBuffer).
func waitProgram(handle uint64, usage []byte) int64 {
	for {
		r := abi.FileRequest{Op: abi.FileWaitChild, Handle: handle}
		if usage != nil {
			r.Buf, r.Len = uint64(uintptr(unsafe.Pointer(&usage[0]))), uint64(len(usage))
		}
		if st := fileRequest(&r); st != -linux.EAGAIN {
			return st
		}
		awaitHost(handle, abi.NotifyExit)
	}
}

// wait4 and waitid options (include/uapi/linux/wait.h).
const (
	wNOHANG = 1
	wEXITED = 4
	wNOWAIT = 0x1000000
	pALL    = 0
	pPID    = 1
)

// waitFor finds an ended child matching pid (-1: any), blocking unless nohang (a signal
// for t ends the wait with errRestart); reap removes it.
func (p *Process) waitFor(t *Task, pid int32, nohang, reap bool) (int32, *child, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.childCond.L == nil {
		p.childCond.L = &p.mu
	}
	for {
		found := false
		for id, c := range p.children {
			if pid > 0 && id != pid {
				continue
			}
			found = true
			if c.done {
				if reap {
					delete(p.children, id)
				}
				return id, c, 0
			}
		}
		if !found {
			return 0, nil, -linux.ECHILD
		}
		if nohang {
			return 0, nil, 0
		}
		if !t.waitOn(&p.childCond) {
			return 0, nil, -errRestart
		}
	}
}

func sysWait4(t *Task, a [6]uint64) int64 {
	pid := int32(a[0])
	if pid < -1 || pid == 0 {
		pid = -1 // process groups: every child is in ours
	}
	id, c, e := t.proc.waitFor(t, pid, a[2]&wNOHANG != 0, true)
	if e != 0 || id == 0 {
		return e
	}
	if a[1] != 0 && !putApp(a[1], c.status) {
		return -linux.EFAULT
	}
	if a[3] != 0 && !putApp(a[3], c.usage) {
		return -linux.EFAULT
	}
	return int64(id)
}

func sysWaitid(t *Task, a [6]uint64) int64 {
	pid := int32(-1)
	switch a[0] {
	case pALL:
	case pPID:
		pid = int32(a[1])
	default:
		return -linux.EINVAL
	}
	if a[3]&wEXITED == 0 {
		return -linux.EINVAL
	}
	id, c, e := t.proc.waitFor(t, pid, a[3]&wNOHANG != 0, a[3]&wNOWAIT == 0)
	if e != 0 {
		return e
	}
	if a[2] != 0 {
		info, ok := appSlice(a[2], 128)
		if !ok {
			return -linux.EFAULT
		}
		clear(info)
		if id != 0 {
			code, st := int32(1), int32(c.status>>8&0xff) // CLD_EXITED
			if c.status&0x7f != 0 {
				code, st = 2, int32(c.status&0x7f) // CLD_KILLED
			}
			*(*int32)(unsafe.Pointer(&info[0])) = int32(syscall.SIGCHLD)
			*(*int32)(unsafe.Pointer(&info[8])) = code
			*(*int32)(unsafe.Pointer(&info[16])) = id
			*(*int32)(unsafe.Pointer(&info[24])) = st
		}
	}
	return 0
}

// killChild sends sig to a program a child started; false if pid is not a child's.
func (p *Process) killChild(pid int32, sig uint64) (int64, bool) {
	p.mu.Lock()
	c := p.children[pid]
	p.mu.Unlock()
	if c == nil {
		return 0, false
	}
	if c.done || c.handle == 0 || sig == 0 {
		return 0, true
	}
	r := abi.FileRequest{Op: abi.FileKillChild, Handle: c.handle, Flags: sig}
	return fileRequest(&r), true
}
