package monitor

import (
	"errors"
	"fmt"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/host/monitor/boot"
	"github.com/pithvm/pith/host/monitor/kvm"
)

// isPVM detects kvm-pvm: its identification MSR reads "PVM".
func isPVM(cpu *kvm.VCPU) bool {
	v, err := cpu.GetMSR(0x4b564d11)
	return err == nil && v == 0x4d5650
}

func tscKHz(cpu *kvm.VCPU) (uint64, error) {
	if v, err := cpu.GetMSR(0x4b564d13); err == nil && v != 0 {
		return v, nil
	}
	if v, err := cpu.TSCKHz(); err == nil && v != 0 {
		return v, nil
	}
	return 0, errors.New("cannot learn the TSC frequency from KVM")
}

// setXCR0 enables every vector state KVM supports (x87, SSE, AVX, AVX-512) and returns it.
func setXCR0(cpu *kvm.VCPU, host hostCPU) uint64 {
	eax, _, _, _ := host.leaf(0xd, 0)
	if v := uint64(eax) & 0xe7; v != 0 && cpu.SetXCR0(v) == nil {
		return v
	}
	return 1
}

func setState(cpu *kvm.VCPU, st *boot.State, i int) error {
	s, err := cpu.Sregs()
	if err != nil {
		return fmt.Errorf("KVM_GET_SREGS: %w", err)
	}
	code := kvm.Segment{Limit: 0xfffff, Selector: abi.SelKernelCode, Type: 0xb, Present: 1, S: 1, L: 1, G: 1}
	data := kvm.Segment{Limit: 0xfffff, Selector: abi.SelKernelData, Type: 0x3, Present: 1, S: 1, DB: 1, G: 1}
	s.CS = code
	s.DS, s.ES, s.FS, s.GS, s.SS = data, data, data, data, data
	s.TR = kvm.Segment{Base: boot.TSS(i), Limit: 0x67, Selector: abi.SelTSS, Type: 0xb, Present: 1}
	s.LDT = kvm.Segment{Unusable: 1}
	s.GDT = kvm.DTable{Base: abi.GDTAddr, Limit: 9*8 - 1}
	s.IDT = kvm.DTable{Base: abi.IDTAddr, Limit: 256*16 - 1}
	s.CR0, s.CR3, s.CR4, s.EFER = st.CR0, boot.CR3(i), st.CR4, st.EFER
	if err := cpu.SetSregs(&s); err != nil {
		return err
	}
	if err := cpu.SetRegs(&kvm.Regs{RIP: st.RIP, RFLAGS: 2}); err != nil {
		return err
	}
	return cpu.SetMSRs([]kvm.MSR{
		{Index: 0xc0000081, Data: st.STAR},
		{Index: 0xc0000082, Data: st.SyscallEntry},
		{Index: 0xc0000084, Data: st.FMASK},
	})
}
