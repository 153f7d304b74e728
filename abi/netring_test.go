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
			if ok, _ := tx.Push(bytes.Repeat([]byte{byte(i)}, 60+i)); !ok {
				t.Fatalf("round %d: push %d refused", round, i)
			}
		}
		if ok, _ := tx.Push([]byte{1}); ok {
			t.Fatal("a full ring took a frame")
		}
		for i := 0; i < NetSlots; i++ {
			n, ok := tx.Pop(buf)
			if !ok || n != 60+i || buf[0] != byte(i) || buf[n-1] != byte(i) {
				t.Fatalf("round %d: pop %d: %d bytes, %v", round, i, n, ok)
			}
		}
		if _, ok := tx.Pop(buf); ok {
			t.Fatal("an empty ring gave a frame")
		}
	}
	if ok, _ := tx.Push(make([]byte, NetSlotSize)); ok {
		t.Fatal("a frame larger than a slot was taken")
	}
}

// The producer notifies exactly when the consumer said it sleeps, and a consumer that
// finds a frame after saying so does not sleep.
func TestNetRingNotifiesASleepingConsumer(t *testing.T) {
	tx, _, _ := testRings()
	if _, notify := tx.Push([]byte("a")); notify {
		t.Fatal("notified an awake consumer")
	}
	if tx.Sleep() {
		t.Fatal("slept with a frame in the ring")
	}
	tx.Pop(make([]byte, 10))
	if !tx.Sleep() {
		t.Fatal("an empty ring did not let the consumer sleep")
	}
	if _, notify := tx.Push([]byte("b")); !notify {
		t.Fatal("a sleeping consumer was not notified")
	}
	if _, notify := tx.Push([]byte("c")); notify {
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
	if n, ok := tx.Pop(buf); !ok || n != NetSlotSize-4 {
		t.Fatalf("pop: %d, %v", n, ok)
	}
	tx.Header.Tail, tx.Header.Head = 7, 1<<31 // garbage counters: still in bounds
	tx.Pop(buf)
	tx.Push([]byte("x"))
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
			if ok, _ := tx.Push(b[:]); ok {
				i++
			}
		}
	}()
	buf := make([]byte, NetSlotSize)
	for i := 0; i < frames; {
		if n, ok := tx.Pop(buf); ok {
			if n != 4 || binary.LittleEndian.Uint32(buf) != uint32(i) {
				t.Fatalf("frame %d: got %d bytes %x", i, n, buf[:n])
			}
			i++
		}
	}
	wg.Wait()
}
