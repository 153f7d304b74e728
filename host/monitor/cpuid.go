package monitor

import (
	"fmt"
	"os"
	"slices"

	"github.com/pithvm/pith/host/monitor/kvm"
)

// CPUID bits the guest relies on.
const (
	cpuidX2APIC      = 1 << 21 // leaf 1 ECX: tier 0 programs its local APIC through MSRs
	cpuidTSCDeadline = 1 << 24 // leaf 1 ECX: tier 0's only timer
	cpuidXSAVE       = 1 << 26 // leaf 1 ECX: the monitor sets CR4.OSXSAVE
	cpuidHypervisor  = 1 << 31 // leaf 1 ECX
	cpuidFSGSBASE    = 1 << 0  // leaf 7 EBX: the monitor sets CR4.FSGSBASE; tier 0 uses WRFSBASE
)

// hostCPU is what this host's KVM offers a guest.
type hostCPU struct {
	supported []kvm.CPUIDEntry // KVM_GET_SUPPORTED_CPUID
	// tscDeadline: KVM emulates the local APIC's TSC-deadline mode. KVM says so through
	// KVM_CAP_TSC_DEADLINE_TIMER; KVM_GET_SUPPORTED_CPUID lists the bit only from Linux
	// 6.13 on, and without the bit in the guest's CPUID KVM masks the mode out of the
	// timer's LVT and ignores every deadline the guest writes (measured on Debian 12's
	// 6.1 and 6.12: a sleeping guest halted for good).
	tscDeadline bool
}

// readHostCPU asks KVM what it offers.
func readHostCPU(sys *kvm.System) (hostCPU, error) {
	supported, err := sys.SupportedCPUID()
	if err != nil {
		return hostCPU{}, err
	}
	h := hostCPU{supported: supported}
	_, _, ecx, _ := h.leaf(1, 0)
	h.tscDeadline = sys.CheckExtension(kvm.CapTSCDeadlineTimer) > 0 || ecx&cpuidTSCDeadline != 0
	return h, nil
}

// leaf returns KVM's supported values of CPUID leaf fn, subleaf index (zeros if absent).
func (h hostCPU) leaf(fn, index uint32) (eax, ebx, ecx, edx uint32) {
	for _, e := range h.supported {
		if e.Function == fn && (e.Index == index || e.Flags&kvmCPUIDFlagSignificantIndex == 0) {
			return e.EAX, e.EBX, e.ECX, e.EDX
		}
	}
	return 0, 0, 0, 0
}

// kvmCPUIDFlagSignificantIndex marks a leaf whose subleaf (ECX input) matters.
const kvmCPUIDFlagSignificantIndex = 1

// unmet says what the guest needs that this host lacks, as one line naming the fix; ""
// when nothing is missing.
func (h hostCPU) unmet(pvm bool) string {
	for _, c := range h.describe(pvm) {
		if !c.OK {
			return c.Fix
		}
	}
	return ""
}

// forVCPU is the CPUID table vCPU id gets: KVM's supported list with the bits the guest
// relies on set from what KVM reports (as Firecracker and kvmtool do: the supported list
// is KVM's floor, not what it emulates), and the vCPU's own APIC ID where CPUID reports
// one.
//
// PITH_KVM_CPUID=supported hands KVM's list through unchanged, as pith did before: on
// a KVM before Linux 6.13 the guest's timer then never fires, which tests the watchdog.
func (h hostCPU) forVCPU(id int) []kvm.CPUIDEntry {
	t := slices.Clone(h.supported)
	if os.Getenv("PITH_KVM_CPUID") == "supported" {
		return t
	}
	for i := range t {
		e := &t[i]
		switch e.Function {
		case 1:
			// KVM emulates x2APIC itself whatever the host CPU has.
			e.ECX |= cpuidX2APIC | cpuidHypervisor
			if h.tscDeadline {
				e.ECX |= cpuidTSCDeadline
			}
			e.EBX = e.EBX&0x00ffffff | uint32(id)<<24 // initial APIC ID
		case 0xb, 0x1f:
			e.EDX = uint32(id) // x2APIC ID
		}
	}
	return t
}

// describe lists what the guest needs from this host's KVM and whether it has it, for
// pith doctor and unmet. On kvm-pvm the guest's CPUID instruction reports the host
// CPU's own bits whatever KVM_SET_CPUID2 says, so only the timer is KVM's to give.
func (h hostCPU) describe(pvm bool) []Check {
	_, _, ecx, _ := h.leaf(1, 0)
	_, ebx, _, _ := h.leaf(7, 0)
	listed := func(v uint32, bit uint32) string {
		if v&bit != 0 {
			return "in KVM_GET_SUPPORTED_CPUID"
		}
		return "not in KVM_GET_SUPPORTED_CPUID"
	}
	deadline := Check{Name: "TSC-deadline timer", OK: h.tscDeadline}
	switch {
	case !h.tscDeadline:
		deadline.Detail = "KVM_CAP_TSC_DEADLINE_TIMER is 0"
		deadline.Fix = "this host's KVM has no TSC-deadline timer (KVM_CAP_TSC_DEADLINE_TIMER is 0), the only timer pith's guest kernel uses: use a Linux host whose KVM emulates the local APIC in the kernel (any distribution kernel since Linux 3.6)"
	case ecx&cpuidTSCDeadline == 0:
		deadline.Detail = "KVM_CAP_TSC_DEADLINE_TIMER; not in KVM_GET_SUPPORTED_CPUID (Linux before 6.13), so pith sets the CPUID bit itself"
	default:
		deadline.Detail = "KVM_CAP_TSC_DEADLINE_TIMER, " + listed(ecx, cpuidTSCDeadline)
	}
	checks := []Check{
		deadline,
		{Name: "x2APIC", OK: true, Detail: "emulated by KVM's in-kernel local APIC, " + listed(ecx, cpuidX2APIC)},
	}
	if pvm {
		return append(checks, Check{Name: "XSAVE, FSGSBASE", OK: true, Detail: "kvm-pvm: the guest sees the host CPU's own"})
	}
	return append(checks,
		Check{Name: "XSAVE", OK: ecx&cpuidXSAVE != 0, Detail: listed(ecx, cpuidXSAVE),
			Fix: "this host's KVM offers guests no XSAVE (CPUID.1:ECX bit 26), which pith's guest kernel needs: use a CPU from 2011 or later with XSAVE enabled in the host kernel"},
		Check{Name: "FSGSBASE", OK: ebx&cpuidFSGSBASE != 0, Detail: listed(ebx, cpuidFSGSBASE),
			Fix: "this host's KVM offers guests no FSGSBASE (CPUID.7:EBX bit 0), which pith's guest kernel needs to switch threads: use an Intel Ivy Bridge, AMD Zen or later CPU"})
}

// Check is one thing pith doctor checked about the host.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"` // where not OK: the one-line refusal naming the fix
}

func (c Check) String() string { return fmt.Sprintf("%s: %s", c.Name, c.Detail) }
