package tier0

import (
	"testing"
	"unsafe"

	"github.com/pithvm/pith/abi"
)

// The monitor reads thread records by abi's offsets (host/monitor/crash.go).
func TestThreadLayout(t *testing.T) {
	var th thread
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"size", unsafe.Sizeof(th), abi.Tier0ThreadSize},
		{"state", unsafe.Offsetof(th.state), abi.Tier0ThreadState},
		{"wait", unsafe.Offsetof(th.wait), abi.Tier0ThreadWait},
		{"tid", unsafe.Offsetof(th.tid), abi.Tier0ThreadTID},
		{"deadline", unsafe.Offsetof(th.deadline), abi.Tier0ThreadDeadline},
		{"futexAddr", unsafe.Offsetof(th.futexAddr), abi.Tier0ThreadFutex},
		{"app", unsafe.Offsetof(th.app), abi.Tier0ThreadApp},
	} {
		if c.got != c.want {
			t.Errorf("thread.%s at %d, abi says %d", c.name, c.got, c.want)
		}
	}
	if unsafe.Sizeof(liveLimit) != 4 || threadBlocked != 2 || waitFutex != 1 || waitSleep != 2 || waitEpoll != 3 {
		t.Error("liveLimit's size or the thread states and waits differ from abi's")
	}
}
