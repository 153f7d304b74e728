package abi

import (
	"encoding/binary"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"
)

// The NIC: Ethernet frames between tier 1 and the monitor through two rings in tier-1
// memory that the monitor reaches too (FileNetAttach). Each ring has one producer and
// one consumer and is a power-of-two array of fixed slots, so neither side ever locks. A
// frame takes as many consecutive slots as it needs (its length, then its bytes, as if
// the slots were one run of memory, wrapping at the ring's end): the link's MTU can be
// far above Ethernet's, and a 16 KiB frame costs each side of the link, each netstack
// and each notification what a 1500-byte one does. A side only notifies the other (tier
// 1: PortNetKick through SysPithNetKick; the monitor: BootInfo.NetRx and an interrupt)
// when the consumer said it sleeps: under load, frames move with no exit and no
// interrupt.
//
// Region layout (NetRegionSize bytes, page aligned): page 0 holds the two headers (the
// transmit ring's at 0, the receive ring's at 64) and NetConfig; the transmit ring's
// slots follow, then the receive ring's. "Transmit" is the guest's: tier 1 produces, the
// monitor consumes.
const (
	NetSlots    = 256
	NetSlotSize = 2048
	// NetMTU is the user-mode network's link MTU: a TCP segment of 16 KiB less headers,
	// 11 times Ethernet's, in 9 slots. A tap's is its device's (NetConfig.MTU).
	NetMTU        = 16384
	NetFrameMax   = NetMTU + 14 // an Ethernet header and the MTU
	NetRingSize   = NetSlots * NetSlotSize
	NetRegionSize = 4096 + 2*NetRingSize
)

// netSlotsFor is how many slots a frame of n bytes takes, with its 4-byte length.
func netSlotsFor(n int) uint32 { return uint32((4 + n + NetSlotSize - 1) / NetSlotSize) }

// NetConfig is how tier 1 numbers its side of the link, written by the monitor at
// NetConfigOffset of the region's first page before it answers FileNetAttach: the user
// network's numbering, or what pith run --net tap:NAME --ip --gateway gave.
type NetConfig struct {
	MAC       [6]byte
	PrefixLen uint8
	_         uint8
	Addr      [4]byte // IPv4
	Gateway   [4]byte // the default route's next hop; zero for none
	MTU       uint16  // the link's: at most NetMTU
}

// NetConfigOffset is where NetConfig is in the region, after the two ring headers.
const NetConfigOffset = 128

// NetRingHeader is one ring's shared state. Head and Tail are free-running slot counters.
type NetRingHeader struct {
	Tail     uint32 // written by the producer: slots before it are filled
	Head     uint32 // written by the consumer: slots before it are free again
	Sleeping uint32 // set by the consumer before it waits; the producer clears it and notifies
	_        [13]uint32
}

// NetRing is one ring as either side sees it: its header and a way to reach slot i.
type NetRing struct {
	Header *NetRingHeader
	Slot   func(i uint32) []byte // NetSlotSize bytes
}

// NetRingCorruptError is what Push and Pop report when a ring holds what no correct pair
// of sides could have written: the producer more than NetSlots ahead of the consumer, or
// the consumer ahead of the producer, or a frame longer than NetFrameMax or than what the
// producer has published. Both counters and the slots are in memory the other side can
// write at will, and past such a state neither "full" nor "empty" means anything. (A
// consumer that moved back by NetSlots or less is not seen: it only makes the ring look
// fuller, which harms no one but itself.)
type NetRingCorruptError struct{ Tail, Head, Length uint32 }

func (e NetRingCorruptError) Error() string {
	return "corrupt NIC ring: tail " + strconv.FormatUint(uint64(e.Tail), 10) + ", head " + strconv.FormatUint(uint64(e.Head), 10) +
		", frame length " + strconv.FormatUint(uint64(e.Length), 10)
}

// Push copies the frame made of parts, one after another, into the ring; false if the
// ring has no room for it or the frame is over NetFrameMax. Notify reports whether the
// consumer was asleep and must now be notified. The error is a NetRingCorruptError,
// after which the ring is best left alone. (In parts: netstack's packets are views, and
// gathering them first would copy each frame once more.)
func (r NetRing) Push(parts ...[]byte) (ok, notify bool, err error) {
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	if size > NetFrameMax {
		return false, false, nil
	}
	tail := atomic.LoadUint32(&r.Header.Tail) // ours, but the consumer can write it too
	head := atomic.LoadUint32(&r.Header.Head)
	switch used := tail - head; {
	case used > NetSlots:
		return false, false, NetRingCorruptError{tail, head, 0}
	case used+netSlotsFor(size) > NetSlots:
		return false, false, nil
	}
	var length [4]byte
	binary.LittleEndian.PutUint32(length[:], uint32(size))
	r.copySlots(tail, 0, length[:], true)
	off := 4
	for _, p := range parts {
		r.copySlots(tail, off, p, true)
		off += len(p)
	}
	atomic.StoreUint32(&r.Header.Tail, tail+netSlotsFor(size))
	return true, atomic.LoadUint32(&r.Header.Sleeping) != 0 && atomic.SwapUint32(&r.Header.Sleeping, 0) != 0, nil
}

// Pop copies the next frame into buf (as much as fits) and reports its length, or false
// if the ring is empty. The error is a NetRingCorruptError: with it, nothing is popped.
func (r NetRing) Pop(buf []byte) (n int, ok bool, err error) {
	return r.PopInto(func(int) []byte { return buf })
}

// PopInto is Pop into the buffer into returns for the frame's size, called only when
// there is a frame: a consumer that hands the frame on whole allocates no more than it
// holds, and nothing for an empty ring.
func (r NetRing) PopInto(into func(size int) []byte) (n int, ok bool, err error) {
	head := atomic.LoadUint32(&r.Header.Head) // ours, but the producer can write it too
	tail := atomic.LoadUint32(&r.Header.Tail)
	switch {
	case tail-head > NetSlots:
		return 0, false, NetRingCorruptError{tail, head, 0}
	case tail == head:
		return 0, false, nil
	}
	var length [4]byte
	r.copySlots(head, 0, length[:], false)
	size := binary.LittleEndian.Uint32(length[:])
	if size > NetFrameMax || netSlotsFor(int(size)) > tail-head {
		return 0, false, NetRingCorruptError{tail, head, size}
	}
	buf := into(int(size))
	n = min(int(size), len(buf))
	r.copySlots(head, 4, buf[:n], false)
	atomic.StoreUint32(&r.Header.Head, head+netSlotsFor(int(size)))
	return n, true, nil
}

// copySlots copies b to (put) or from the bytes at offset off of the run of slots that
// starts at slot first, wrapping at the ring's end.
func (r NetRing) copySlots(first uint32, off int, b []byte, put bool) {
	for len(b) > 0 {
		s := r.Slot((first + uint32(off/NetSlotSize)) % NetSlots)[off%NetSlotSize:]
		var k int
		if put {
			k = copy(s, b)
		} else {
			k = copy(b, s)
		}
		b, off = b[k:], off+k
	}
}

// Full reports whether the producer may be waiting for room: fewer slots are free than
// the largest frame takes.
func (r NetRing) Full() bool {
	used := atomic.LoadUint32(&r.Header.Tail) - atomic.LoadUint32(&r.Header.Head)
	return used <= NetSlots && used+netSlotsFor(NetFrameMax) > NetSlots
}

// Empty reports whether the ring has no frame to pop. A corrupt ring is not empty: Pop
// says what it is.
func (r NetRing) Empty() bool {
	return atomic.LoadUint32(&r.Header.Head) == atomic.LoadUint32(&r.Header.Tail)
}

// Poll looks at the ring until it has a frame or d has passed, and reports whether it
// has one: a consumer with a CPU to spare polls before it sleeps, so that a producer
// still at work finds it awake and need not notify it (an exit or an interrupt each
// time). Only with a CPU to spare: on one, polling takes the time the producer needs.
func (r NetRing) Poll(d time.Duration) bool {
	for start := time.Now(); r.Empty(); {
		if time.Since(start) >= d {
			return false
		}
	}
	return true
}

// NetPollWindow is how long a NIC's consumer polls its ring before it sleeps, where it
// polls at all: about what a notification costs the producer's side on kvm-pvm (an
// ioeventfd write 5 us, an interrupt 50 us; HOST.md).
const NetPollWindow = 20 * time.Microsecond

// Sleep marks the consumer asleep and reports whether it may sleep: false if a frame
// arrived meanwhile (then it is marked awake again).
func (r NetRing) Sleep() bool {
	atomic.StoreUint32(&r.Header.Sleeping, 1)
	if !r.Empty() {
		atomic.StoreUint32(&r.Header.Sleeping, 0)
		return false
	}
	return true
}

// NetRings lays the two rings over a region of NetRegionSize bytes given page by page
// (page(i) is the region's i-th 4 KiB page): the monitor reaches tier-1 memory one
// guest page at a time.
func NetRings(page func(i int) []byte) (tx, rx NetRing) {
	hdr := page(0)
	at := func(base int) func(uint32) []byte {
		return func(i uint32) []byte {
			off := base + int(i)*NetSlotSize
			p := page(off / 4096)
			return p[off%4096 : off%4096+NetSlotSize]
		}
	}
	tx = NetRing{Header: (*NetRingHeader)(unsafe.Pointer(&hdr[0])), Slot: at(4096)}
	rx = NetRing{Header: (*NetRingHeader)(unsafe.Pointer(&hdr[64])), Slot: at(4096 + NetRingSize)}
	return tx, rx
}
