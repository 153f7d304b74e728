package monitor

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/host/monitor/fileservice"
	"github.com/pithvm/pith/host/monitor/kvm"
	"github.com/pithvm/pith/host/monitor/memory"
)

// Fork is a guest to resume as a copy of another, made at its fork (Config.Fork): the
// parent's memory (memory.Snapshot) and what its file service passes on.
type Fork struct {
	Memory *os.File
	State  fileservice.ForkState
}

const msrTSC = 0x10

// fork serves PortFork: tier 0 has parked every other vCPU and flushed the console, so
// guest memory is still; it is copied, and the file service starts the copy. The answer
// (a child handle or an errno) goes in the FileFork request, which the copy, made before
// it, sees unanswered.
func (m *machine) fork(cpu *kvm.VCPU) {
	m.answer(func(mmu memory.Virtual, req *abi.FileRequest) bool {
		req.Result = m.forkResult(cpu, mmu, req)
		return true
	})
}

func (m *machine) forkResult(cpu *kvm.VCPU, mmu memory.Virtual, req *abi.FileRequest) int64 {
	if m.files == nil {
		return -int64(unix.ENOSYS)
	}
	tsc, err := cpu.GetMSR(msrTSC)
	if err != nil {
		return -int64(unix.EIO)
	}
	mem, err := m.guest.Snapshot()
	if err != nil {
		fmt.Fprintf(m.cfg.Stderr, "pith: fork: %v\n", err)
		return -int64(unix.ENOMEM)
	}
	defer mem.Close()
	return m.files.Fork(mmu, req, mem, tsc, m.guest.Windows())
}

// resumeFork makes a freshly installed guest the copy described by f: the parent's
// memory, a flag telling tier 0 to resume rather than boot, and the parent's clock.
func resumeFork(m *machine, f *Fork) error {
	for _, w := range f.State.Windows {
		file := os.NewFile(uintptr(w.FD), "window")
		err := m.guest.MapWindowAt(w.GPA, file, w.Off, w.Len)
		file.Close() // the window keeps a descriptor of its own
		if err != nil {
			return fmt.Errorf("mapping the copy's file window: %w", err)
		}
	}
	if err := m.guest.Restore(f.Memory); err != nil {
		return err
	}
	m.info.Flags |= abi.FlagForked
	for _, cpu := range m.cpus {
		if err := cpu.SetMSRs([]kvm.MSR{{Index: msrTSC, Data: f.State.TSC}}); err != nil {
			return fmt.Errorf("setting the copy's TSC: %w", err)
		}
	}
	return nil
}
