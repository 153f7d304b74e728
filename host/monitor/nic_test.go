package monitor

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/pithvm/pith/abi"
)

// syncBuffer is stderr shared by the NIC's two goroutines and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testNIC is attachNIC without a guest: the rings lie in a plain buffer the test plays
// the guest on. Setup, if given, runs before the NIC's goroutines start.
func testNIC(t *testing.T, setup func(n *nic)) (n *nic, stderr *syncBuffer) {
	t.Helper()
	n, err := newNIC(nil)
	if err != nil {
		t.Fatal(err)
	}
	region := make([]byte, abi.NetRegionSize)
	n.tx, n.rx = abi.NetRings(func(i int) []byte { return region[i*4096 : (i+1)*4096] })
	if setup != nil {
		setup(n)
	}
	stderr = &syncBuffer{}
	n.stderr = stderr
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go n.transmit(ctx)
	go n.receive(ctx, nil) // nil: the test's receive ring never sleeps, so nothing is signalled
	t.Cleanup(n.close)
	return n, stderr
}

// stops waits for the NIC's transmit goroutine to end.
func stops(t *testing.T, n *nic) {
	t.Helper()
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the NIC still runs")
	}
}

// toGuest sends one frame from the network towards the guest's receive ring.
func toGuest(n *nic) {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(make([]byte, 60))})
	var l stack.PacketBufferList
	l.PushBack(pkt)
	n.link.WritePackets(l)
	pkt.DecRef()
}

func TestNICStopsOnACorruptTransmitRing(t *testing.T) {
	n, stderr := testNIC(t, func(n *nic) { n.tx.Header.Tail = 1000 })
	n.kick()
	stops(t, n)
	want := "pith: the guest's NIC wrote a corrupt transmit ring (tail 1000 head 0): its network is stopped\n"
	if got := stderr.String(); got != want {
		t.Fatalf("stderr %q, want %q", got, want)
	}
}

// A corrupt receive ring stops transmit too: the NIC is stopped as a whole.
func TestNICStopsOnACorruptReceiveRing(t *testing.T) {
	n, stderr := testNIC(t, func(n *nic) { n.rx.Header.Head = 5 })
	toGuest(n)
	stops(t, n)
	want := "pith: the guest's NIC wrote a corrupt receive ring (tail 0 head 5): its network is stopped\n"
	if got := stderr.String(); got != want {
		t.Fatalf("stderr %q, want %q", got, want)
	}
}

// Both rings corrupt at once: one line, not two.
func TestNICReportsCorruptionOnce(t *testing.T) {
	n, stderr := testNIC(t, func(n *nic) {
		n.tx.Header.Head = 1 << 31
		n.rx.Header.Tail = abi.NetSlots + 1
	})
	toGuest(n)
	n.kick()
	stops(t, n)
	time.Sleep(100 * time.Millisecond) // receive's report, had it made one
	if got := stderr.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "corrupt") {
		t.Fatalf("stderr %q, want one line", got)
	}
}

// A guest that refills its transmit ring as fast as the monitor drains it does not keep
// the monitor's goroutine from seeing that the guest is gone. This guest refills it each
// time the monitor reads a slot: the ring is never empty.
func TestNICTransmitYieldsToAGuestThatNeverStops(t *testing.T) {
	var slots atomic.Uint64
	n, _ := testNIC(t, func(n *nic) {
		slot, hdr := n.tx.Slot, n.tx.Header
		n.tx.Slot = func(i uint32) []byte {
			slots.Add(1)
			atomic.StoreUint32(&hdr.Tail, atomic.LoadUint32(&hdr.Head)+abi.NetSlots)
			return slot(i)
		}
		hdr.Tail = 1
	})
	n.kick()
	for slots.Load() < 10*abi.NetSlots {
		time.Sleep(time.Millisecond)
	}
	n.cancel()
	stops(t, n)
}
