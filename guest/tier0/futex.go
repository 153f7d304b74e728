package tier0

import (
	"github.com/pithvm/pith/guest/linux"
	"github.com/pithvm/pith/guest/x86"
)

const (
	futexWait       = 0
	futexWake       = 1
	futexWaitBitset = 9
	futexWakeBitset = 10
	futexCmdMask    = 0x7f
	futexRealtime   = 256
)

// sysFutex implements futex(2) for FUTEX_WAIT/WAKE and their BITSET forms. Tier 0 runs to
// completion, so the compare-and-block is atomic and no wake-up can be lost.
//
//go:nosplit
func sysFutex(uaddr, op, val, timeout, uaddr2, val3 uint64) int64 {
	cmd := op & futexCmdMask
	if uaddr&3 != 0 {
		return -linux.EINVAL
	}
	if !mapped(uintptr(uaddr), 4) {
		return -linux.EFAULT
	}
	bitset := uint32(0xffffffff)
	if cmd == futexWaitBitset || cmd == futexWakeBitset {
		bitset = uint32(val3)
		if bitset == 0 {
			return -linux.EINVAL
		}
	}
	switch cmd {
	case futexWait, futexWaitBitset:
		if *(*uint32)(x86.Pointer(uintptr(uaddr))) != uint32(val) {
			return -linux.EAGAIN
		}
		var deadline uint64
		if timeout != 0 {
			if !mapped(uintptr(timeout), 16) {
				return -linux.EFAULT
			}
			ts := (*timespec)(x86.Pointer(uintptr(timeout)))
			if ts.nsec < 0 || ts.nsec >= 1_000_000_000 || ts.sec < 0 {
				return -linux.EINVAL
			}
			switch {
			case cmd == futexWait:
				deadline = deadlineAfter(ts.nanos())
			case op&futexRealtime != 0:
				deadline = deadlineAt(ts.nanos() - wallBase)
			default:
				deadline = deadlineAt(ts.nanos())
			}
		}
		t := current()
		t.futexAddr = uintptr(uaddr)
		t.futexBitset = bitset
		block(waitFutex, deadline)
		return 0
	case futexWake, futexWakeBitset:
		n := int64(0)
		for i := int32(0); i < liveLimit && n < int64(int32(val)); i++ {
			t := threadAt(i)
			if t.state == threadBlocked && t.wait == waitFutex && t.futexAddr == uintptr(uaddr) && t.futexBitset&bitset != 0 {
				wake(i, 0)
				n++
			}
		}
		return n
	}
	return -linux.ENOSYS
}
