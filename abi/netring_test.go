package abi

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"
	"time"
)

func testRings() (tx, rx NetRing, region []byte) {
	region = make([]byte, NetRegionSize)
	tx, rx = NetRings(func(i int) []byte { return region[i*4096 : (i+1)*4096] })
	return tx, rx, region
}

func TestNetRingCarriesFramesInOrder(t *testing.T) {
	tx, _, _ := testRings()
	buf := make([]byte, NetFrameMax)
	for round := 0; round < 3; round++ { // past the wrap of the slot index
		for i := 0; i < NetSlots; i++ {
			if ok, _, err := tx.Push(bytes.Repeat([]byte{byte(i)}, 60+i)); !ok || err != nil {
				t.Fatalf("round %d: push %d refused", round, i)
			}
		}
		if ok, _, err := tx.Push([]byte{1}); ok || err != nil || !tx.Full() {
			t.Fatalf("a full ring: %v, %v, Full %v", ok, err, tx.Full())
		}
		for i := 0; i < NetSlots; i++ {
			n, ok, err := tx.Pop(buf)
			if !ok || err != nil || n != 60+i || buf[0] != byte(i) || buf[n-1] != byte(i) {
				t.Fatalf("round %d: pop %d: %d bytes, %v", round, i, n, ok)
			}
		}
		if _, ok, err := tx.Pop(buf); ok || err != nil || tx.Full() {
			t.Fatalf("an empty ring: %v, %v, Full %v", ok, err, tx.Full())
		}
	}
	if ok, _, _ := tx.Push(make([]byte, NetFrameMax+1)); ok {
		t.Fatal("a frame larger than NetFrameMax was taken")
	}
}

// A frame longer than a slot takes the slots it needs, across the ring's end too, and
// the ring is full when the next frame's slots are not free.
func TestNetRingCarriesLargeFrames(t *testing.T) {
	tx, _, _ := testRings()
	buf := make([]byte, NetFrameMax)
	perFrame := int(netSlotsFor(NetFrameMax))
	for round := 0; round < 5; round++ {
		pushed := 0
		for ; ; pushed++ {
			frame := make([]byte, NetFrameMax)
			for i := range frame {
				frame[i] = byte(i*7 + pushed + round)
			}
			ok, _, err := tx.Push(frame)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
		}
		if pushed != NetSlots/perFrame {
			t.Fatalf("round %d: %d frames of %d bytes fit; want %d", round, pushed, NetFrameMax, NetSlots/perFrame)
		}
		for i := 0; i < pushed; i++ {
			n, ok, err := tx.Pop(buf)
			if !ok || err != nil || n != NetFrameMax {
				t.Fatalf("round %d: pop %d: %d bytes, %v, %v", round, i, n, ok, err)
			}
			for j := range n {
				if buf[j] != byte(j*7+i+round) {
					t.Fatalf("round %d, frame %d: byte %d is %d", round, i, j, buf[j])
				}
			}
		}
		tx.Push(make([]byte, 100)) // shift where the next round's frames start
		tx.Pop(buf)
	}
}

// A frame pushed in parts is one frame, its parts in order, across slots and the ring's
// wrap; parts past NetFrameMax together are refused.
func TestNetRingGathersParts(t *testing.T) {
	tx, _, _ := testRings()
	buf := make([]byte, NetFrameMax)
	head := bytes.Repeat([]byte{1}, 54)
	body := bytes.Repeat([]byte{2}, 3*NetSlotSize)
	for round := range 2 * NetSlots / 4 { // each frame takes 4 slots: the wrap is crossed
		if ok, _, err := tx.Push(head, nil, body, []byte{byte(round)}); !ok || err != nil {
			t.Fatalf("round %d: push %v %v", round, ok, err)
		}
		n, ok, err := tx.Pop(buf)
		want := append(append(append([]byte{}, head...), body...), byte(round))
		if !ok || err != nil || !bytes.Equal(buf[:n], want) {
			t.Fatalf("round %d: popped %d bytes (%v %v), not the parts in order", round, n, ok, err)
		}
	}
	if ok, _, _ := tx.Push(make([]byte, NetFrameMax), []byte{0}); ok {
		t.Error("parts longer than NetFrameMax together were taken")
	}
}

// PopInto asks for a buffer of the frame's size, and for none when the ring is empty.
func TestNetRingPopIntoAsksForTheFramesSize(t *testing.T) {
	tx, _, _ := testRings()
	asked := -1
	into := func(size int) []byte { asked = size; return make([]byte, size) }
	if _, ok, err := tx.PopInto(into); ok || err != nil || asked != -1 {
		t.Fatalf("an empty ring: %v %v, asked for %d bytes", ok, err, asked)
	}
	tx.Push([]byte("ack"))
	if n, ok, err := tx.PopInto(into); !ok || err != nil || n != 3 || asked != 3 {
		t.Fatalf("a 3-byte frame: %d %v %v, asked for %d bytes", n, ok, err, asked)
	}
}

// Poll answers as soon as a frame is there, and false once its time is up.
func TestNetRingPoll(t *testing.T) {
	tx, _, _ := testRings()
	start := time.Now()
	if tx.Poll(2 * time.Millisecond) {
		t.Fatal("an empty ring polled as having a frame")
	}
	if took := time.Since(start); took < 2*time.Millisecond {
		t.Errorf("an empty ring's poll ended after %v, before its 2 ms", took)
	}
	go func() {
		time.Sleep(time.Millisecond)
		tx.Push([]byte("late"))
	}()
	if !tx.Poll(10 * time.Second) {
		t.Fatal("a frame pushed during the poll was not seen")
	}
	if tx.Header.Sleeping != 0 {
		t.Error("polling marked the consumer asleep")
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

// A length over NetFrameMax, or one longer than the producer published, is corrupt, and
// nothing is popped: the rings' memory is shared with a side that is not trusted.
func TestNetRingRefusesABadLength(t *testing.T) {
	for _, length := range []uint32{NetFrameMax + 1, 1 << 31, 2*NetSlotSize - 4 + 1} {
		tx, _, region := testRings()
		tx.Push(make([]byte, NetSlotSize)) // two slots published
		binary.LittleEndian.PutUint32(region[4096:], length)
		_, ok, err := tx.Pop(make([]byte, 1<<16))
		if want := (NetRingCorruptError{2, 0, length}); ok || err != want || tx.Header.Head != 0 {
			t.Errorf("length %d: pop %v, %v, head %d; want %v", length, ok, err, tx.Header.Head, want)
		}
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
		want := NetRingCorruptError{c.tail, c.head, 0}
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
	if _, ok, err := tx.Pop(make([]byte, NetFrameMax)); !ok || err != nil {
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

// FuzzNetRing plays both sides of a ring from a program in the input, which may also
// write anything into the ring's memory between calls, as the side that is not trusted
// can. Whatever it writes: nothing panics, no frame is longer than NetFrameMax, a drain
// ends within a ring's worth of frames, corrupt counters are reported (and only they),
// and while nothing was written behind the ring's back, frames come out as they went in.
func FuzzNetRing(f *testing.F) {
	const (
		opPush = iota
		opPop
		opDrain
		opTail
		opHead
		opPoke
		opSleep
		ops
	)
	f.Add([]byte{opPush, 60, 0, opPush, 0, 2, opSleep, opPop, 0, 8, opDrain, opSleep, opPush, 1, 0})
	f.Add([]byte{opPush, 10, 0, opTail, 0xe8, 3, 0, 0, opPop, 0, 8, opPush, 1, 0, opHead, 0xe8, 3, 0, 0, opDrain})
	f.Add([]byte{opPush, 10, 0, opPoke, 0, 0x10, 0, 4, 0xff, 0xff, 0xff, 0x7f, opPop, 0, 8, opDrain})
	f.Add([]byte{opHead, 0, 0xff, 0xff, 0xff, opTail, 0, 1, 0, 0, opDrain, opPush, 5, 0})
	f.Fuzz(func(t *testing.T, prog []byte) {
		// Pages made as they are touched: a whole region per run would slow the fuzzer
		// to a crawl.
		pages := map[int][]byte{}
		page := func(i int) []byte {
			if pages[i] == nil {
				pages[i] = make([]byte, 4096)
			}
			return pages[i]
		}
		tx, _ := NetRings(page)
		hdr := tx.Header
		arg := func(n int) uint32 {
			var b [4]byte
			k := copy(b[:n], prog)
			prog = prog[k:]
			return binary.LittleEndian.Uint32(b[:])
		}
		var queue [][]byte // pushed, not yet popped: known only while intact
		intact := true
		var seq byte
		buf := make([]byte, NetFrameMax+16)
		// pop pops one frame into a buffer of size and checks it; false when nothing came.
		pop := func(size int) bool {
			tail, head := hdr.Tail, hdr.Head
			var length [4]byte
			tx.copySlots(head, 0, length[:], false)
			size32 := binary.LittleEndian.Uint32(length[:])
			n, ok, err := tx.Pop(buf[:size])
			switch {
			case tail-head > NetSlots:
				if ok || err != (NetRingCorruptError{tail, head, 0}) || hdr.Head != head {
					t.Fatalf("tail %d head %d: pop %v, %v, head now %d", tail, head, ok, err, hdr.Head)
				}
				return false
			case tail != head && (size32 > NetFrameMax || netSlotsFor(int(size32)) > tail-head):
				if ok || err != (NetRingCorruptError{tail, head, size32}) || hdr.Head != head {
					t.Fatalf("tail %d head %d length %d: pop %v, %v, head now %d", tail, head, size32, ok, err, hdr.Head)
				}
				return false
			case err != nil:
				t.Fatalf("tail %d head %d: pop says %v", tail, head, err)
			case ok != (tail != head):
				t.Fatalf("tail %d head %d: pop %v", tail, head, ok)
			case !ok:
				return false
			case n > NetFrameMax || n > size || hdr.Head != head+netSlotsFor(int(size32)):
				t.Fatalf("pop into %d bytes: %d bytes, head %d to %d", size, n, head, hdr.Head)
			}
			if intact {
				want := queue[0]
				queue = queue[1:]
				if !bytes.Equal(buf[:n], want[:min(len(want), size)]) {
					t.Fatalf("popped %d bytes %x, want %x", n, buf[:n], want)
				}
			}
			return true
		}
		for len(prog) > 0 {
			op := prog[0] % ops
			prog = prog[1:]
			switch op {
			case opPush:
				frame := bytes.Repeat([]byte{seq}, int(arg(2))%(NetFrameMax+8))
				seq++
				tail, head, sleeping := hdr.Tail, hdr.Head, hdr.Sleeping
				ok, notify, err := tx.Push(frame)
				switch {
				case tail-head > NetSlots && len(frame) <= NetFrameMax:
					if ok || err != (NetRingCorruptError{tail, head, 0}) || hdr.Tail != tail {
						t.Fatalf("tail %d head %d: push %v, %v, tail now %d", tail, head, ok, err, hdr.Tail)
					}
				case len(frame) > NetFrameMax || tail-head+netSlotsFor(len(frame)) > NetSlots:
					if ok || err != nil || hdr.Tail != tail {
						t.Fatalf("tail %d head %d: push of %d bytes: %v, %v", tail, head, len(frame), ok, err)
					}
				case !ok || err != nil || hdr.Tail != tail+netSlotsFor(len(frame)) || notify != (sleeping != 0) || hdr.Sleeping != 0:
					t.Fatalf("tail %d head %d sleeping %d: push %v, %v, %v", tail, head, sleeping, ok, notify, err)
				case intact:
					queue = append(queue, frame)
				}
			case opPop:
				pop(int(arg(2)) % len(buf))
			case opDrain:
				for k := 0; pop(NetFrameMax); k++ {
					if k == NetSlots {
						t.Fatalf("more than %d frames from a ring no one refills", NetSlots)
					}
				}
			case opTail:
				hdr.Tail, intact = arg(4), false
			case opHead:
				hdr.Head, intact = arg(4), false
			case opPoke:
				at := int(arg(4)) % NetRegionSize
				n := copy(page(at / 4096)[at%4096:], prog[:min(int(arg(1)), len(prog))])
				prog, intact = prog[n:], false
			case opSleep:
				empty := hdr.Tail == hdr.Head
				if tx.Sleep() != empty || hdr.Sleeping != map[bool]uint32{false: 0, true: 1}[empty] {
					t.Fatalf("tail %d head %d: sleep, sleeping %d", hdr.Tail, hdr.Head, hdr.Sleeping)
				}
			}
			// Once the ring is empty, what was written behind its back is gone: what is
			// pushed from here on must come out as it went in.
			if !intact && hdr.Tail == hdr.Head {
				intact, queue = true, nil
			}
		}
	})
}
