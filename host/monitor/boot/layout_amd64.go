// Package boot loads the pith kernel ELF into guest memory and builds everything the vCPU
// needs to start in 64-bit mode at its entry: page tables, GDT, IDT, TSS and the boot-info
// block. The guest's first instructions run emulated on kvm-pvm, so the monitor does this
// work instead of the guest.
package boot

import "github.com/pithvm/pith/abi"

// x86 architectural values (SDM Vol 3A).
const (
	cr0PE = 1 << 0
	cr0MP = 1 << 1
	cr0ET = 1 << 4
	cr0NE = 1 << 5
	cr0WP = 1 << 16
	cr0AM = 1 << 18
	cr0PG = 1 << 31

	cr4PAE        = 1 << 5
	cr4OSFXSR     = 1 << 9
	cr4OSXMMEXCPT = 1 << 10
	cr4FSGSBASE   = 1 << 16
	cr4OSXSAVE    = 1 << 18

	eferSCE = 1 << 0
	eferLME = 1 << 8
	eferLMA = 1 << 10
	eferNXE = 1 << 11

	msrSTAR    = 0xc0000081
	msrLSTAR   = 0xc0000082
	msrFMASK   = 0xc0000084
	msrFSBase  = 0xc0000100
	rflagsIF   = 1 << 9
	rflagsDF   = 1 << 10
	rflagsTF   = 1 << 8
	rflagsAC   = 1 << 18
	rflagsBit1 = 1 << 1

	pteP  = 1
	pteRW = 2
	pteUS = 4 // kvm-pvm refuses to run native with any U=0 page (HOST.md)
	ptePS = 0x80

	hugePage = 2 << 20
	gib      = 1 << 30
)

// Page-table pages the monitor builds (abi layout).
const (
	maxMemory = (abi.PerCPUBase - abi.SharedPDAddr - 0x1000) / 0x1000 * gib

	tssSize = 0x68
)

// VTxTSSAddr is where KVM on Intel VT-x keeps the three pages it needs to emulate real
// mode (KVM_SET_TSS_ADDR), guest-physical. pith's guest starts in 64-bit mode and never
// enters real mode, so the monitor ignores a failure to place them.
const VTxTSSAddr = 0xfffbd000

// CPUBlock is the guest-physical address of vCPU i's block (abi.PerCPU*).
func CPUBlock(i int) uint64 { return abi.PerCPUBase + uint64(i)*abi.PerCPUStride }

// CR3 is the page-table root of vCPU i.
func CR3(i int) uint64 { return CPUBlock(i) + abi.PerCPUPML4 }

// TSS is the task-state segment of vCPU i.
func TSS(i int) uint64 { return CPUBlock(i) + abi.PerCPUTSS }
