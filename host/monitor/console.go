package monitor

import (
	"fmt"

	"github.com/pithvm/pith/abi"
)

// drain copies the guest's console ring (and any serial text) to stdout and stderr. The
// ring is guest memory: every index and length in it is checked.
func (m *machine) drain() {
	if m.serial.Len() > 0 {
		m.cfg.Stderr.Write(m.serial.Bytes())
		m.serial.Reset()
	}
	head, tail := m.info.ConsoleHead, m.info.ConsoleTail
	if tail-head > abi.ConsoleSize {
		fmt.Fprintf(m.cfg.Stderr, "pith: guest console ring corrupt (head %d, tail %d); output lost\n", head, tail)
		m.info.ConsoleHead = tail
		return
	}
	ring, _ := m.guest.Slice(abi.ConsoleAddr, abi.ConsoleSize)
	at := func(i uint64) byte { return ring[i%abi.ConsoleSize] }
	for head < tail {
		if tail-head < abi.ConsoleRecordHeader {
			break
		}
		fd := at(head)
		n := uint64(at(head+1)) | uint64(at(head+2))<<8 | uint64(at(head+3))<<16
		head += abi.ConsoleRecordHeader
		if n > tail-head {
			break
		}
		w := goneWriter{m.cfg.Stdout, 1, m}
		if fd == abi.ConsoleStderr {
			w = goneWriter{m.cfg.Stderr, 2, m}
		}
		start, end := head%abi.ConsoleSize, (head+n)%abi.ConsoleSize
		if start < end || n == 0 {
			w.Write(ring[start:end])
		} else {
			w.Write(ring[start:])
			w.Write(ring[:end])
		}
		head += n
	}
	m.info.ConsoleHead = tail
}
