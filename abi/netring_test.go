package abi

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"
)

func testRings() (tx, rx NetRing, region []byte) {
	region = make([]byte, NetRegionSize)
	tx, rx = NetRings(func(i int) []byte { return region[i*4096 : (i+1)*4096] })
	return tx, rx, region
}

func TestNetRingCarriesFramesInOrder(t *testing.T) {
	tx, _, _ := testRings()
	buf := make([]byte, NetSlotSize)
	for round := 0; round < 3; round++ { // past the wrap of the slot index
		for i := 0; i < NetSlots; i++ {
			if ok, _, err := tx.Push(bytes.Repeat([]byte{byte(i)}, 60+i)); !ok || err != nil {
				t.Fatalf("round %d: push %d refused", round, i)
			}
		}
		if ok, _, err := tx.Push([]byte{1}); ok || err != nil {
			t.Fatalf("a full ring: %v, %v", ok, err)
		}
		for i := 0; i < NetSlots; i++ {
			n, ok, err := tx.Pop(buf)
			if !ok || err != nil || n != 60+i || buf[0] != byte(i) || buf[n-1] != byte(i) {
				t.Fatalf("round %d: pop %d: %d bytes, %v", round, i, n, ok)
			}
		}
		if _, ok, err := tx.Pop(buf); ok || err != nil {
			t.Fatalf("an empty ring: %v, %v", ok, err)
		}
	}
	if ok, _, _ := tx.Push(make([]byte, NetSlotSize)); ok {
		t.Fatal("a frame larger than a slot was taken")
	}
}

// The producer notifies exactly when the consumer said it sleeps, and a consumer that
// finds a frame after saying so does not sleep.
func TestNetRingNotifiesASleepingConsumer(t *testing.T) {
	tx, _, _ := testRings()
	if _, notify, _ := tx.Push([]byte("a")); notify {
		t.Fatal("notified an awake consumer")
	}
	if tx.Sleep() {
		t.Fatal("slept with a frame in the ring")
	}
	tx.Pop(make([]byte, 10))
	if !tx.Sleep() {
		t.Fatal("an empty ring did not let the consumer sleep")
	}
	if _, notify, _ := tx.Push([]byte("b")); !notify {
		t.Fatal("a sleeping consumer was not notified")
	}
	if _, notify, _ := tx.Push([]byte("c")); notify {
		t.Fatal("notified twice for one sleep")
	}
}

// A length the other side wrote past its slot is cut to the slot: the rings' memory is
// shared with a side that is not trusted.
func TestNetRingCutsABadLength(t *testing.T) {
	tx, _, region := testRings()
	tx.Push([]byte("frame"))
	binary.LittleEndian.PutUint32(region[4096:], 1<<31)
	buf := make([]byte, 1<<16)
	if n, ok, err := tx.Pop(buf); !ok || err != nil || n != NetSlotSize-4 {
		t.Fatalf("pop: %d, %v, %v", n, ok, err)
	}
}

// Counters no correct side could have written are reported, by both sides, and nothing
// moves: past them, "full" and "empty" mean nothing.
func TestNetRingReportsCorruptCounters(t *testing.T) {
	for _, c := range []struct{ tail, head uint32 }{
		{NetSlots + 1, 0},         // the producer too far ahead
		{7, 1 << 31},              // far apart
		{5, 6},                    // the consumer past the producer
		{2, 1<<32 - NetSlots + 1}, // the same, across the wrap
	} {
		tx, _, _ := testRings()
		tx.Header.Tail, tx.Header.Head = c.tail, c.head
		want := NetRingCorruptError{c.tail, c.head}
		if _, ok, err := tx.Pop(make([]byte, NetSlotSize)); ok || err != want {
			t.Errorf("tail %d head %d: pop %v, %v", c.tail, c.head, ok, err)
		}
		if ok, _, err := tx.Push([]byte("x")); ok || err != want {
			t.Errorf("tail %d head %d: push %v, %v", c.tail, c.head, ok, err)
		}
		if tx.Header.Tail != c.tail || tx.Header.Head != c.head {
			t.Errorf("tail %d head %d: moved to %d, %d", c.tail, c.head, tx.Header.Tail, tx.Header.Head)
		}
	}
	tx, _, _ := testRings() // a full ring across the wrap is not corrupt
	tx.Header.Tail, tx.Header.Head = NetSlots/2, 1<<32-NetSlots/2
	if _, ok, err := tx.Pop(make([]byte, NetSlotSize)); !ok || err != nil {
		t.Errorf("a full ring across the wrap: %v, %v", ok, err)
	}
}

func TestNetRingAcrossGoroutines(t *testing.T) {
	tx, _, _ := testRings()
	const frames = 100000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < frames; {
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], uint32(i))
			if ok, _, _ := tx.Push(b[:]); ok { // corruption would show in Pop too
				i++
			}
		}
	}()
	buf := make([]byte, NetSlotSize)
	for i := 0; i < frames; {
		n, ok, err := tx.Pop(buf)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if n != 4 || binary.LittleEndian.Uint32(buf) != uint32(i) {
				t.Fatalf("frame %d: got %d bytes %x", i, n, buf[:n])
			}
			i++
		}
	}
	wg.Wait()
}
