package monitor

import (
	"strings"
	"testing"

	"github.com/pithvm/pith/host/monitor/kvm"
)

// Debian 12's KVM (Linux 6.1, 6.12) leaves TSC-deadline out of KVM_GET_SUPPORTED_CPUID
// though it emulates it: the table a vCPU gets must have the bit, or KVM ignores every
// deadline the guest writes.
func TestCPUIDSetsWhatKVMEmulates(t *testing.T) {
	h := hostCPU{
		supported: []kvm.CPUIDEntry{
			{Function: 1, EBX: 0x00010800, ECX: cpuidXSAVE},
			{Function: 7, Flags: kvmCPUIDFlagSignificantIndex, EBX: cpuidFSGSBASE},
			{Function: 0xb, Index: 1, Flags: kvmCPUIDFlagSignificantIndex, EDX: 0},
		},
		tscDeadline: true,
	}
	if why := h.unmet(false); why != "" {
		t.Fatalf("unmet: %s", why)
	}
	t3 := h.forVCPU(3)
	want := uint32(cpuidXSAVE | cpuidX2APIC | cpuidTSCDeadline | cpuidHypervisor)
	if t3[0].ECX != want {
		t.Errorf("leaf 1 ECX %#x, want %#x", t3[0].ECX, want)
	}
	if t3[0].EBX != 0x03010800 {
		t.Errorf("leaf 1 EBX %#x, want APIC ID 3 in bits 31-24 and the rest kept", t3[0].EBX)
	}
	if t3[2].EDX != 3 {
		t.Errorf("leaf 0xb EDX %d, want x2APIC ID 3", t3[2].EDX)
	}
	if h.supported[0].ECX != cpuidXSAVE || h.supported[0].EBX != 0x00010800 {
		t.Errorf("forVCPU changed KVM's own list")
	}
	h.tscDeadline = false
	if t0 := h.forVCPU(0); t0[0].ECX&cpuidTSCDeadline != 0 {
		t.Errorf("TSC-deadline set without KVM_CAP_TSC_DEADLINE_TIMER")
	}
}

func TestCPUIDRefusesWhatTheGuestLacks(t *testing.T) {
	full := []kvm.CPUIDEntry{
		{Function: 1, ECX: cpuidXSAVE},
		{Function: 7, Flags: kvmCPUIDFlagSignificantIndex, EBX: cpuidFSGSBASE},
	}
	for _, tc := range []struct {
		name  string
		h     hostCPU
		pvm   bool
		want  string
		check string // the pith doctor check that fails
	}{
		{"no timer", hostCPU{supported: full}, false, "KVM_CAP_TSC_DEADLINE_TIMER is 0", "TSC-deadline timer"},
		{"no timer on kvm-pvm", hostCPU{supported: full}, true, "KVM_CAP_TSC_DEADLINE_TIMER is 0", "TSC-deadline timer"},
		{"no XSAVE", hostCPU{supported: full[1:], tscDeadline: true}, false, "no XSAVE", "XSAVE"},
		{"no FSGSBASE", hostCPU{supported: full[:1], tscDeadline: true}, false, "no FSGSBASE", "FSGSBASE"},
		{"kvm-pvm without leaf 7", hostCPU{supported: full[:1], tscDeadline: true}, true, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			why := tc.h.unmet(tc.pvm)
			if (tc.want == "") != (why == "") || !strings.Contains(why, tc.want) || strings.Contains(why, "\n") {
				t.Errorf("unmet: %q, want one line containing %q", why, tc.want)
			}
			for _, c := range tc.h.describe(tc.pvm) {
				if c.OK != (c.Name != tc.check) {
					t.Errorf("doctor check %s: ok %v", c, c.OK)
				}
			}
		})
	}
}
