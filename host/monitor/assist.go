package monitor

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/arch/x86/x86asm"

	"github.com/pithvm/pith/host/monitor/kvm"
)

// Emulation assist for the standard x86 path on kvm-pvm.
//
// Without the native switch, kvm-pvm runs the guest's supervisor code in KVM's instruction
// emulator, which lacks instructions every Go-compiled tier 0 uses (XORPS for the ABI's
// zero register, XSAVE, WRFSBASE, ...). On hardware KVM those run on the CPU. To keep that
// path testable here, the monitor performs the few missing instructions itself when the
// emulator gives up on one, so the same kernel code runs as on hardware, only slowly.

// errNotAssisted means the instruction is not one the monitor knows how to perform.
var errNotAssisted = errors.New("instruction not assisted")

// assist performs the instruction at RIP that the emulator refused.
func (m *machine) assist(cpu *kvm.VCPU) error {
	regs, err := cpu.Regs()
	if err != nil {
		return err
	}
	sregs, err := cpu.Sregs()
	if err != nil {
		return err
	}
	mmu := m.guest.Virtual(sregs.CR3)
	code := make([]byte, 15)
	if err := mmu.Read(regs.RIP, code); err != nil {
		return err
	}
	inst, err := x86asm.Decode(code, 64)
	if err != nil {
		return fmt.Errorf("decoding %x: %w", code, err)
	}
	next := regs.RIP + uint64(inst.Len)
	ea := func(a x86asm.Arg) (uint64, bool) {
		mem, ok := a.(x86asm.Mem)
		if !ok {
			return 0, false
		}
		addr := uint64(mem.Disp)
		if mem.Base == x86asm.RIP {
			addr += next
		} else if mem.Base != 0 {
			addr += gpr(&regs, mem.Base)
		}
		if mem.Index != 0 {
			addr += gpr(&regs, mem.Index) * uint64(mem.Scale)
		}
		switch mem.Segment {
		case x86asm.FS:
			addr += sregs.FS.Base
		case x86asm.GS:
			addr += sregs.GS.Base
		}
		return addr, true
	}
	switch inst.Op {
	case x86asm.XORPS, x86asm.PXOR, x86asm.MOVUPS, x86asm.MOVAPS, x86asm.MOVDQU, x86asm.MOVDQA:
		fpu, err := cpu.FPU()
		if err != nil {
			return err
		}
		var src [16]byte
		if r, ok := xmm(inst.Args[1]); ok {
			src = fpu.XMM[r]
		} else if a, ok := ea(inst.Args[1]); ok {
			if err := mmu.Read(a, src[:]); err != nil {
				return err
			}
		} else {
			return errNotAssisted
		}
		if inst.Op == x86asm.XORPS || inst.Op == x86asm.PXOR {
			r, ok := xmm(inst.Args[0])
			if !ok {
				return errNotAssisted
			}
			for i := range src {
				fpu.XMM[r][i] ^= src[i]
			}
		} else if r, ok := xmm(inst.Args[0]); ok {
			fpu.XMM[r] = src
		} else if a, ok := ea(inst.Args[0]); ok {
			if err := mmu.Write(a, src[:]); err != nil {
				return err
			}
			break
		} else {
			return errNotAssisted
		}
		if err := cpu.SetFPU(fpu); err != nil {
			return err
		}
	case x86asm.XSAVE, x86asm.XSAVE64, x86asm.XRSTOR, x86asm.XRSTOR64:
		a, ok := ea(inst.Args[0])
		if !ok {
			return errNotAssisted
		}
		if inst.Op == x86asm.XSAVE || inst.Op == x86asm.XSAVE64 {
			area, err := cpu.XSave()
			if err != nil {
				return err
			}
			if err := mmu.Write(a, area[:]); err != nil {
				return err
			}
		} else {
			var area [4096]byte
			if err := mmu.Read(a, area[:]); err != nil {
				return err
			}
			if err := cpu.SetXSave(&area); err != nil {
				return err
			}
		}
	case x86asm.WRFSBASE:
		r, ok := inst.Args[0].(x86asm.Reg)
		if !ok {
			return errNotAssisted
		}
		sregs.FS.Base = gpr(&regs, r)
		if err := cpu.SetSregs(&sregs); err != nil {
			return err
		}
	case x86asm.XGETBV:
		xcr0 := m.xcr0
		regs.RAX, regs.RDX = xcr0&0xffffffff, xcr0>>32
	case x86asm.RDRAND:
		r, ok := inst.Args[0].(x86asm.Reg)
		if !ok {
			return errNotAssisted
		}
		var b [8]byte
		rand.Read(b[:])
		setGPR(&regs, r, binary.LittleEndian.Uint64(b[:]))
		regs.RFLAGS |= 1 // CF: a value was returned
	default:
		return errNotAssisted
	}
	regs.RIP = next
	m.assists++
	return cpu.SetRegs(&regs)
}

func xmm(a x86asm.Arg) (int, bool) {
	r, ok := a.(x86asm.Reg)
	if !ok || r < x86asm.X0 || r > x86asm.X15 {
		return 0, false
	}
	return int(r - x86asm.X0), true
}

// gprField maps x86asm's 64-bit registers onto kvm.Regs fields.
func gprField(regs *kvm.Regs, r x86asm.Reg) *uint64 {
	switch {
	case r >= x86asm.EAX && r <= x86asm.R15L:
		r = r - x86asm.EAX + x86asm.RAX
	}
	switch r {
	case x86asm.RAX:
		return &regs.RAX
	case x86asm.RCX:
		return &regs.RCX
	case x86asm.RDX:
		return &regs.RDX
	case x86asm.RBX:
		return &regs.RBX
	case x86asm.RSP:
		return &regs.RSP
	case x86asm.RBP:
		return &regs.RBP
	case x86asm.RSI:
		return &regs.RSI
	case x86asm.RDI:
		return &regs.RDI
	case x86asm.R8:
		return &regs.R8
	case x86asm.R9:
		return &regs.R9
	case x86asm.R10:
		return &regs.R10
	case x86asm.R11:
		return &regs.R11
	case x86asm.R12:
		return &regs.R12
	case x86asm.R13:
		return &regs.R13
	case x86asm.R14:
		return &regs.R14
	case x86asm.R15:
		return &regs.R15
	}
	return nil
}

func gpr(regs *kvm.Regs, r x86asm.Reg) uint64 {
	if p := gprField(regs, r); p != nil {
		return *p
	}
	return 0
}

func setGPR(regs *kvm.Regs, r x86asm.Reg, v uint64) {
	if p := gprField(regs, r); p != nil {
		*p = v
	}
}
