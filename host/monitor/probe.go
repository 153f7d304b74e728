package monitor

import (
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/host/monitor/kvm"
)

// HostInfo is what the monitor learns about this machine's KVM.
type HostInfo struct {
	PVM    bool   // kvm-pvm: guests must switch to native execution themselves
	TSCKHz uint64 // the vCPU TSC frequency
	Kernel string // the host kernel's release (uname -r)
	Module string // which KVM: kvm-pvm, or the hardware module and its paging mode
	Checks []Check
	Unmet  string // why a guest would be refused; "" if none
}

// Probe opens /dev/kvm, creates a throwaway VM and vCPU, and reports what it found.
func Probe() (*HostInfo, error) {
	sys, err := kvm.Open()
	if err != nil {
		return nil, err
	}
	defer sys.Close()
	host, err := readHostCPU(sys)
	if err != nil {
		return nil, err
	}
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
	pvm := isPVM(cpu)
	info := &HostInfo{PVM: pvm, TSCKHz: khz, Kernel: kernelRelease(), Checks: host.describe(pvm), Unmet: host.unmet(pvm)}
	info.Module = hardwareModule()
	if pvm {
		info.Module = "kvm-pvm (a software hypervisor: guests switch to native execution at boot)"
	}
	return info, nil
}

func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// hardwareModule names the loaded KVM vendor module and whether it uses two-dimensional
// paging (without it KVM shadows the guest's page tables: slower, but pith runs).
func hardwareModule() string {
	param := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	on := func(v string) string {
		if v == "Y" || v == "1" {
			return "on"
		}
		return "off"
	}
	switch {
	case param("/sys/module/kvm_amd/parameters/npt") != "":
		return "kvm_amd (AMD-V, nested paging " + on(param("/sys/module/kvm_amd/parameters/npt")) + ")"
	case param("/sys/module/kvm_intel/parameters/ept") != "":
		return "kvm_intel (VT-x, EPT " + on(param("/sys/module/kvm_intel/parameters/ept")) + ")"
	}
	return "hardware KVM"
}
