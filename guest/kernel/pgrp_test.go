package kernel

import (
	"testing"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
)

// A shell's job control as Linux answers it: the first app leads its group and session;
// a child gets a group of its own; a process that leads no group may start a session.
func TestProcessGroups(t *testing.T) {
	p := &Process{children: map[int32]*child{100001: {}}}
	task := &Task{proc: p}
	call := func(f func(*Task, [6]uint64) int64, args ...int64) int64 {
		var a [6]uint64
		for i, v := range args {
			a[i] = uint64(v)
		}
		return f(task, a)
	}
	for _, c := range []struct {
		what string
		got  int64
		want int64
	}{
		{"getpgrp", call(sysGetpgrp), abi.AppPID},
		{"getsid(0)", call(sysGetsid, 0), abi.AppPID},
		{"setsid of a group leader", call(sysSetsid), -linux.EPERM},
		{"setpgid of the session leader", call(sysSetpgid, 0, 0), -linux.EPERM},
		{"setpgid(child, 0)", call(sysSetpgid, 100001, 0), 0},
		{"getpgid(child)", call(sysGetpgid, 100001), 100001},
		{"getsid(child)", call(sysGetsid, 100001), abi.AppPID},
		{"getpgid of a stranger", call(sysGetpgid, 4242), -linux.ESRCH},
		{"setpgid of a stranger", call(sysSetpgid, 4242, 0), -linux.ESRCH},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.what, c.got, c.want)
		}
	}
	// A vfork child (Python's start_new_session) leads no group: it may start a session.
	v := &Process{pgid: p.pgid, sid: p.sid, vfork: &vforkChild{pid: 100002}}
	vt := &Task{proc: v}
	if got := sysSetsid(vt, [6]uint64{}); got != 100002 {
		t.Fatalf("setsid in a vfork child = %d, want its pid", got)
	}
	if pg, sid := v.group(); pg != 100002 || sid != 100002 {
		t.Errorf("after setsid: group %d session %d", pg, sid)
	}
	if got := sysSetsid(vt, [6]uint64{}); got != -linux.EPERM {
		t.Errorf("second setsid = %d, want EPERM", got)
	}
}
