package monitor

import (
	"github.com/pithvm/pith/host/monitor/kvm"
)

// HostInfo is what the monitor learns about this machine's KVM.
type HostInfo struct {
	PVM    bool   // kvm-pvm: guests must switch to native execution themselves
	TSCKHz uint64 // the vCPU TSC frequency
}

// Probe opens /dev/kvm, creates a throwaway VM and vCPU, and reports what it found.
func Probe() (*HostInfo, error) {
	sys, err := kvm.Open()
	if err != nil {
		return nil, err
	}
	defer sys.Close()
	vm, err := sys.CreateVM()
	if err != nil {
		return nil, err
	}
	defer vm.Close()
	cpu, err := vm.CreateVCPU(0)
	if err != nil {
		return nil, err
	}
	defer cpu.Close()
	khz, err := tscKHz(cpu)
	if err != nil {
		return nil, err
	}
	return &HostInfo{PVM: isPVM(cpu), TSCKHz: khz}, nil
}
