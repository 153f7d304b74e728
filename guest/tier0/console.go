package tier0

import (
	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/x86"
)

const consoleFlushDelayNs = 10_000_000

// consoleDeadline is when buffered console output must reach the monitor (TSC; 0 if the
// ring is empty). Output is flushed in batches: when the ring fills, when the vCPU idles,
// at exit, or at this deadline, never once per write.
var consoleDeadline uint64

//go:nosplit
func consoleDirty() bool {
	bi := info()
	return bi.ConsoleTail != bi.ConsoleHead
}

// consoleFlush hands the ring to the monitor, which drains it before the vCPU resumes.
//
//go:nosplit
func consoleFlush() {
	consoleDeadline = 0
	if consoleDirty() {
		outl(abi.PortConsoleFlush, 0)
	}
}

//go:nosplit
func consolePut(b byte) {
	bi := info()
	*(*byte)(x86.Pointer(abi.ConsoleAddr + uintptr(bi.ConsoleTail%abi.ConsoleSize))) = b
	bi.ConsoleTail++
}

// consoleWrite appends a record for fd holding n bytes at p (already validated).
//
//go:nosplit
func consoleWrite(fd int, p uintptr, n uintptr) {
	const maxRecord = abi.ConsoleSize / 4
	bi := info()
	for n > 0 {
		chunk := n
		if chunk > maxRecord {
			chunk = maxRecord
		}
		if abi.ConsoleSize-(bi.ConsoleTail-bi.ConsoleHead) < uint64(chunk)+abi.ConsoleRecordHeader {
			consoleFlush()
		}
		consolePut(byte(fd))
		consolePut(byte(chunk))
		consolePut(byte(chunk >> 8))
		consolePut(byte(chunk >> 16))
		// At most two copies: up to the end of the ring, then from its start.
		at := uintptr(bi.ConsoleTail % abi.ConsoleSize)
		first := chunk
		if first > abi.ConsoleSize-at {
			first = abi.ConsoleSize - at
		}
		copyBytes(abi.ConsoleAddr+at, p, first)
		copyBytes(abi.ConsoleAddr, p+first, chunk-first)
		bi.ConsoleTail += uint64(chunk)
		p += chunk
		n -= chunk
	}
	if consoleDeadline == 0 {
		consoleDeadline = deadlineAfter(consoleFlushDelayNs)
	}
}

// printk writes a tier-0 message to the serial port, for events that must be seen even if
// the guest dies next (unknown system calls, crashes). Each byte is an exit: keep it rare.
//
//go:nosplit
func printk(s string) {
	for i := 0; i < len(s); i++ {
		outb(abi.PortSerial, s[i])
	}
}

//go:nosplit
func printkHex(v uint64) {
	const digits = "0123456789abcdef"
	printk("0x")
	started := false
	for shift := 60; shift >= 0; shift -= 4 {
		d := (v >> uint(shift)) & 0xf
		if d != 0 || started || shift == 0 {
			outb(abi.PortSerial, digits[d])
			started = true
		}
	}
}
