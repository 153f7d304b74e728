package kvm

import (
	"encoding/binary"
	"fmt"
)

// Exit reasons (KVM_EXIT_*).
const (
	ExitUnknown       = 0
	ExitException     = 1
	ExitIO            = 2
	ExitHypercall     = 3
	ExitDebug         = 4
	ExitHLT           = 5
	ExitMMIO          = 6
	ExitShutdown      = 8
	ExitFailEntry     = 9
	ExitIntr          = 10
	ExitInternalError = 17
	ExitSystemEvent   = 24
)

// kvm_run field offsets (struct kvm_run).
const (
	runExitReason = 8
	runIO         = 32
	runInternal   = 32
)

// ExitReason returns why the last Run returned.
func (c *VCPU) ExitReason() uint32 { return binary.LittleEndian.Uint32(c.run[runExitReason:]) }

// IO describes a KVM_EXIT_IO: port, direction and the data bytes (shared with the guest).
type IO struct {
	Out  bool
	Port uint16
	Data []byte
}

// IO returns the pending port access of an ExitIO.
func (c *VCPU) IO() (IO, error) {
	r := c.run[runIO:]
	dir, size, port := r[0], r[1], binary.LittleEndian.Uint16(r[2:])
	count := binary.LittleEndian.Uint32(r[4:])
	off := binary.LittleEndian.Uint64(r[8:])
	n := uint64(size) * uint64(count)
	if off > uint64(len(c.run)) || n > uint64(len(c.run))-off {
		return IO{}, fmt.Errorf("KVM_EXIT_IO data outside kvm_run")
	}
	return IO{Out: dir == 1, Port: port, Data: c.run[off : off+n]}, nil
}

// InternalError returns the suberror and data words of an ExitInternalError.
func (c *VCPU) InternalError() (uint32, []uint64) {
	r := c.run[runInternal:]
	sub := binary.LittleEndian.Uint32(r)
	n := binary.LittleEndian.Uint32(r[4:])
	if n > 16 {
		n = 16
	}
	data := make([]uint64, n)
	for i := range data {
		data[i] = binary.LittleEndian.Uint64(r[8+8*i:])
	}
	return sub, data
}
