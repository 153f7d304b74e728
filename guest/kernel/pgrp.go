package kernel

import (
	"encoding/binary"
	"syscall"
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
)

// Process groups and sessions, as shells and Python's subprocess use them. The first
// app leads its own (abi.AppPID); a process pith starts as a unikernel of its own
// (execve) starts there again, and a fork's child, or a vfork child, inherits its
// parent's. No terminal decides which group is in the foreground, so a group is a name
// only: kill(0) and kill(-pgid) reach this process, as kill of any process pith does not
// know does.

// pid is p's own process ID: a vfork child's, the one its parent knows it by.
func (p *Process) pid() int32 {
	if p.vfork != nil {
		return p.vfork.pid
	}
	return selfPID.Load()
}

// group is p's process group and session.
func (p *Process) group() (pgid, sid int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pgid, sid = p.pgid, p.sid
	if pgid == 0 {
		pgid = abi.AppPID
	}
	if sid == 0 {
		sid = abi.AppPID
	}
	return pgid, sid
}

func sysGetpgrp(t *Task, a [6]uint64) int64 {
	pgid, _ := t.proc.group()
	return int64(pgid)
}

// groupOf answers getpgid and getsid for pid (0: the caller): the caller's own, or, for
// one of its children, the group setpgid gave it, else the caller's.
func (p *Process) groupOf(pid int32, session bool) int64 {
	pgid, sid := p.group()
	if session {
		pgid = sid
	}
	if pid == 0 || pid == p.pid() {
		return int64(pgid)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.children[pid]
	switch {
	case c == nil:
		return -linux.ESRCH
	case !session && c.pgid != 0:
		return int64(c.pgid)
	}
	return int64(pgid)
}

func sysGetpgid(t *Task, a [6]uint64) int64 { return t.proc.groupOf(int32(a[0]), false) }

func sysGetsid(t *Task, a [6]uint64) int64 { return t.proc.groupOf(int32(a[0]), true) }

func sysSetpgid(t *Task, a [6]uint64) int64 {
	p := t.proc
	pid, pgid := int32(a[0]), int32(a[1])
	own := p.pid()
	if pid == 0 {
		pid = own
	}
	if pgid == 0 {
		pgid = pid
	}
	if pgid < 0 {
		return -linux.EINVAL
	}
	_, sid := p.group()
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case pid == own && sid == own:
		return -linux.EPERM // a session leader stays in its group
	case pid == own:
		p.pgid = pgid
	case p.children[pid] != nil:
		p.children[pid].pgid = pgid // as the shell sees it; the child sets its own too
	default:
		return -linux.ESRCH
	}
	return 0
}

func sysSetsid(t *Task, a [6]uint64) int64 {
	p := t.proc
	own := p.pid()
	if pgid, _ := p.group(); pgid == own {
		return -linux.EPERM // a group leader cannot start a session
	}
	p.mu.Lock()
	p.pgid, p.sid = own, own
	p.mu.Unlock()
	return int64(own)
}

// sysGetrusage answers CPU times and the rest as the host counts them for this guest's
// pith (RUSAGE_SELF) or for the programs it started that ended and were waited for
// (RUSAGE_CHILDREN): a guest's CPU time is its pith's. A guest's largest resident set
// is the memory it has in use, not its pith's. A thread's (RUSAGE_THREAD) is what tier 0
// counts it ran (CLOCK_THREAD_CPUTIME_ID: this goroutine serves the call on the calling
// thread), all as user time.
func sysGetrusage(t *Task, a [6]uint64) int64 {
	const rusageSelf, rusageChildren, rusageThread = 0, -1, 1
	ru := hostBuffer(abi.RusageSize)
	switch who := int32(a[0]); who { // an int: what is above it in the register is not the caller's
	case rusageSelf, rusageThread:
		if who == rusageSelf {
			if e := hostRusage(abi.RusageSelf, ru); e != 0 {
				return e
			}
		} else {
			var ts [2]int64
			syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, 3 /* CLOCK_THREAD_CPUTIME_ID */, uintptr(unsafe.Pointer(&ts)), 0)
			binary.LittleEndian.PutUint64(ru[0:], uint64(ts[0]))      // ru_utime.tv_sec
			binary.LittleEndian.PutUint64(ru[8:], uint64(ts[1]/1000)) // ru_utime.tv_usec
		}
		_, used := memory()
		binary.LittleEndian.PutUint64(ru[32:], used>>10) // ru_maxrss, in KiB
	case rusageChildren:
		if e := hostRusage(abi.RusageChildren, ru); e != 0 {
			return e
		}
	default:
		return -linux.EINVAL
	}
	if !putApp(a[1], [abi.RusageSize]byte(ru)) {
		return -linux.EFAULT
	}
	return 0
}

// hostRusage fills ru (from hostBuffer) with the host's struct rusage for who
// (abi.RusageSelf or abi.RusageChildren).
func hostRusage(who uint64, ru []byte) int64 {
	r := abi.FileRequest{Op: abi.FileRusage, Flags: who, Buf: uint64(uintptr(unsafe.Pointer(&ru[0]))), Len: uint64(len(ru))}
	return fileRequest(&r)
}

// sysTimes answers the clock ticks since boot (USER_HZ, 100 a second) and the CPU
// times getrusage gives, in ticks.
func sysTimes(t *Task, a [6]uint64) int64 {
	if a[0] != 0 {
		var tms [32]byte
		ru := hostBuffer(abi.RusageSize)
		for i, who := range []uint64{abi.RusageSelf, abi.RusageChildren} {
			if hostRusage(who, ru) != 0 {
				clear(ru)
			}
			for j := range 2 { // ru_utime, ru_stime: struct timeval
				sec := binary.LittleEndian.Uint64(ru[16*j:])
				usec := binary.LittleEndian.Uint64(ru[16*j+8:])
				binary.LittleEndian.PutUint64(tms[16*i+8*j:], sec*100+usec/10_000)
			}
		}
		if !putApp(a[0], tms) {
			return -linux.EFAULT
		}
	}
	return uptime() / 10_000_000
}
