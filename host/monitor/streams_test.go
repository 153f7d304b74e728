package monitor

import (
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A stream whose reader goes away is reported at once, before anything is written to
// it; one whose reader stays, or that is no pipe, is not; stop ends the watch.
func TestWatchReaders(t *testing.T) {
	var a, b [2]int
	if err := unix.Pipe(a[:]); err != nil {
		t.Fatal(err)
	}
	if err := unix.Pipe(b[:]); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(a[1])
	defer unix.Close(b[0])
	defer unix.Close(b[1])
	null, err := unix.Open("/dev/null", unix.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(null)
	var mu sync.Mutex
	var gone []int
	reported := make(chan struct{}, 3)
	stop := watchReaders([]int{a[1], b[1], null}, func(i int) {
		mu.Lock()
		gone = append(gone, i)
		mu.Unlock()
		reported <- struct{}{}
	})
	unix.Close(a[0])
	select {
	case <-reported:
	case <-time.After(10 * time.Second):
		t.Fatal("a pipe whose reader closed was not reported")
	}
	time.Sleep(50 * time.Millisecond)
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("stop did not end the watch")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(gone) != 1 || gone[0] != 0 {
		t.Errorf("reported %v, want [0] (only the first pipe lost its reader)", gone)
	}
}
