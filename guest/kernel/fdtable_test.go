package kernel

import "testing"

// Closing a descriptor leaves a tier-0 object or host file open while another descriptor
// has it: a dup, or in a vfork child, the parent's (os/exec's dup2 into place closes the
// child's copy of the netpoller's epoll instance).
func TestCloseLeavesWhatOthersHold(t *testing.T) {
	epoll := &file{kind: kindTier0, real: 7}
	parent := &Process{fds: map[int]*file{3: epoll}}
	child := &Process{fds: map[int]*file{}, vfork: &vforkChild{parent: parent}}
	if !child.shared(epoll.dup()) {
		t.Errorf("a vfork child's copy of its parent's epoll instance is not shared")
	}
	delete(parent.fds, 3)
	if child.shared(epoll) || parent.shared(epoll) {
		t.Errorf("an object no descriptor has is shared")
	}
	host := &file{kind: kindHost, handle: 9}
	parent.fds[5] = host.dup() // host itself was closed, as sysClose takes it out first
	if !parent.shared(host) {
		t.Errorf("a dup'd host file is not shared")
	}
}

// Descriptors dup'd from one open share tier 1's offset (a /proc file's; a host file's is
// the host's), before and after it first moves, as Linux's open file description: a read
// through one moves them all.
func TestDupSharesTheOffset(t *testing.T) {
	f := &file{kind: kindProc}
	g := f.dup()
	g.setPos(7)
	h := g.dup()
	f.setPos(f.pos() + 5)
	if f.pos() != 12 || g.pos() != 12 || h.pos() != 12 {
		t.Errorf("offsets after moving dups: %d %d %d, want 12 each", f.pos(), g.pos(), h.pos())
	}
	other := &file{kind: kindProc}
	other.setPos(3)
	if f.pos() != 12 || other.pos() != 3 {
		t.Errorf("another open moved the first one's offset: %d %d", f.pos(), other.pos())
	}
}
