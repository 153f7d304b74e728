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
	m.info.HostReady, m.info.HostWatches = 0, 0 // the parent's watches are not the copy's (monitor.go notifies once its files exist)
	return setTSC(m.cpus, f.State.TSC, m.khz)
}

// setTSC gives the copy's vCPUs the parent's TSC, so that its deadlines and
// CLOCK_MONOTONIC go on from the parent's. KVM before Linux 6.7 takes a TSC written
// within a second of the count it expects (here: since the vCPU was made) for vCPUs being
// synchronized, and keeps the TSC it has: the copy of a parent less than a second old
// kept its own, up to a second behind the parent's (its clock went back; an interactive
// bash's fork child once waited for a timer that KVM never delivered). So the first
// vCPU's TSC is written twice, 3 s ahead first, which KVM takes, then the value, now
// seconds away from what KVM expects, which it takes too; the other vCPUs' writes of the
// same value then match the first's, which keeps them in step.
func setTSC(cpus []*kvm.VCPU, tsc, khz uint64) error {
	for i, cpu := range cpus {
		writes := []uint64{tsc}
		if i == 0 {
			writes = []uint64{tsc + 3000*khz, tsc}
		}
		for _, v := range writes {
			if err := cpu.SetMSRs([]kvm.MSR{{Index: msrTSC, Data: v}}); err != nil {
				return fmt.Errorf("setting the copy's TSC: %w", err)
			}
		}
	}
	got, err := cpus[0].GetMSR(msrTSC)
	if err != nil {
		return fmt.Errorf("reading the copy's TSC: %w", err)
	}
	if got < tsc || got-tsc > 1000*khz {
		return fmt.Errorf("KVM did not take the copy's TSC: %d written, %d read back", tsc, got)
	}
	return nil
}
