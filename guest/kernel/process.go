package kernel

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pithvm/pith/abi"
)

// Process is the app: its tasks and what Linux keeps per process.
type Process struct {
	mu        sync.Mutex
	tasks     map[int32]*Task
	sigaction [64]sigaction
	wg        sync.WaitGroup

	brkStart, brk uint64 // the program break (for C libraries' malloc)
	exe           string // the app's file (/proc/self/exe)
	name          string // the name it was started by, links not followed (/proc/self/comm)
	unsupported   map[uint64]bool
	fds           map[int]*file
	cwd           string
	umask         uint32      // the file mode creation mask (umask(2)), under mu
	alarm         realTimer   // ITIMER_REAL (itimer.go)
	timers        posixTimers // timer_create's (posixtimer.go)

	pgid, sid int32            // its process group and session (pgrp.go); 0: abi.AppPID's
	vfork     *vforkChild      // set in a vfork child, until it runs a program (spawn.go)
	children  map[int32]*child // the processes it started, until waited for
	childCond sync.Cond        // on mu: a child ended

	sharedMaps []sharedMapping // shared writable file mappings (mmap.go)
	windows    []*window       // private file mappings through the file window (window.go)
	mappings   []mapping       // what the app mapped, for /proc/self/maps (procfs.go)
	argv, envp []string        // as the app was started, for /proc/self/cmdline and environ

	// ending is set by the first thread to end the process (exit, killedBy): the other
	// threads make no more system calls, as Linux stops them before the end, so that
	// nothing they do while the network is flushed (a listener closed under an accept)
	// is seen, or changes the exit status.
	ending atomic.Bool
	// execHandle is the program that replaced the app (execve outside a vfork child:
	// replacedBy), which the signals pith is sent go to; 0: none.
	execHandle atomic.Uint64
	// forking is set while a thread forks (fork.go): the others run no app code until
	// it is done, which in the child is never.
	forking atomic.Bool
}

func (p *Process) addTask(t *Task) {
	p.mu.Lock()
	p.tasks[t.tid] = t
	p.mu.Unlock()
}

func (p *Process) removeTask(t *Task) {
	p.mu.Lock()
	delete(p.tasks, t.tid)
	last := len(p.tasks) == 0
	p.mu.Unlock()
	if last {
		p.exit(0) // Linux ends a process whose last thread exits; its status is 0
	}
}

func (p *Process) task(tid int32) *Task {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tasks[tid]
}

// exit ends the app and the guest with status code (its low 8 bits, as Linux keeps).
func (p *Process) exit(code int) {
	code &= 0xff
	if p.vfork != nil {
		p.vforkExit(uint32(code) << 8)
		return
	}
	p.end()
	os.Exit(code)
}

// killedBy ends the app and the guest as death by signal sig does. The monitor is told
// the signal (abi.ExitSignaled), not only the 128+sig pith exits with, so that a program
// that started this one sees a death by signal, not an exit. In a vfork child it ends
// the child only, and returns.
func (p *Process) killedBy(sig int) {
	if p.vfork != nil {
		p.vforkExit(uint32(sig))
		return
	}
	p.end()
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, uintptr(abi.ExitSignaled+sig), 0, 0)
	}
}

// end is what ending the process does before the guest goes: once, by the first thread
// to end it; any other waits for the end.
func (p *Process) end() {
	if !p.ending.CompareAndSwap(false, true) {
		select {}
	}
	p.syncShared(0, ^uint64(0), false)
	p.drainPipes()
	flushNetwork()
}

// drainPipeTime bounds how long an ending app waits for what it wrote into pipes to reach
// the programs that read them (a reader that never reads would hold it for ever).
const drainPipeTime = 5 * time.Second

// drainPipes closes the app's pipes, as its exit does, and waits until what it wrote
// into those that lead to other programs (pumpIn) is theirs: on Linux the bytes are in
// the kernel's pipe, here they still have to leave the guest.
func (p *Process) drainPipes() {
	p.mu.Lock()
	var pipes []*file
	for n, f := range p.fds {
		if f.kind == kindPipe {
			pipes = append(pipes, f)
			delete(p.fds, n)
		}
	}
	p.mu.Unlock()
	for _, f := range pipes {
		f.release()
	}
	drained := make(chan struct{})
	go func() {
		outPumps.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(drainPipeTime):
	}
}

// kick makes task t leave app code (or a call blocked for it) to look at its signals.
func kick(t *Task) {
	syscall.RawSyscall(sysPithKick, uintptr(t.tid), 0, 0)
}
