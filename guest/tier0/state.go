package tier0

import (
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/x86"
)

// Constants the assembly reads through go_asm.h.
const (
	kstackSize          = abi.KStackSize
	maxCPUs             = abi.MaxCPUs
	perCPUAddr          = abi.PerCPUAddr
	cpuIDOff            = unsafe.Offsetof(abi.CPU{}.ID)
	cpuPVMGPA           = unsafe.Offsetof(abi.CPU{}.PVMGPA)
	cpuKStackTop        = unsafe.Offsetof(abi.CPU{}.KStackTop)
	faultStackSize      = 16 << 10
	bootInfoAddr        = abi.BootInfoAddr
	bootInfoFlagsOffset = unsafe.Offsetof(abi.BootInfo{}.Flags)
	flagPVM             = abi.FlagPVM
	pvmPageAddr         = abi.PVMPageAddr
	regsGPREnd          = unsafe.Offsetof(abi.Regs{}.Vector)
	regsFrameEnd        = unsafe.Sizeof(abi.Regs{})
	selUserCode         = abi.SelUserCode
	selUserData         = abi.SelUserData
	vectorTimer         = abi.VectorTimer
	vectorWakeup        = abi.VectorWakeup
	vectorSpurious      = abi.VectorSpurious
	vectorSyscall       = 0x100 // abi.Regs.Vector of a thread that entered by SYSCALL

	// idle's layout: MOVB $1, abs32 (8 bytes), STI (1), HLT (1). test/tier0check checks it.
	idleHLTOffset = 9
	idleAfterHLT  = 10
	// iretToUser's layout: MOVB $1, abs32 (8 bytes), then IRETQ.
	iretOffset = 8

	vectorXSAVE  = 0
	vectorFXSAVE = 1
	vectorNone   = 2
)

// cpu is a vCPU's CPU block. Every vCPU sees its own at abi.PerCPUAddr (its page tables
// map it there), so the entry paths reach it by a constant address; any vCPU's block is
// also reachable at its physical address (cpuAt).
type cpu struct {
	hw          abi.CPU // written by the monitor: ID, APIC ID, kvm-pvm page, stack top
	curThread   uintptr // *thread being run or being handled
	userSP      uintptr // scratch for the entry paths
	inTier0     uint8   // 1 while tier 0 runs: tells interrupt-in-thread from -in-tier-0
	idle        uint8   // 1 while halted in schedule's idle loop
	wakePending uint32  // set by an interrupt that landed inside tier 0
	cur         int32   // index of the current thread, -1 if none
	sliceEnd    uint64  // TSC at which the current thread's time slice ends; 0 if unlimited
	armed       uint64  // TSC deadline in this vCPU's timer; 0 if none
	tlbGen      uint64  // tlbGen this vCPU's TLB has caught up with (mm.go)
	runSince    uint64  // TSC at which the current thread got this vCPU
	acctSince   uint64  // TSC from which the current thread's run is not yet in its cpuTicks
}

// State shared with the assembly. Tier 0 runs on each vCPU's own stack, under bigLock.
var (
	kstacks    [maxCPUs * kstackSize]byte
	intrStacks [maxCPUs * abi.IntrStackSize]byte
	faultStack [faultStackSize]byte
	tier0TLS   [2]uint64 // FS base for tier-0 Go code points past slot 0 (g = nil)
	crashRegs  abi.Regs

	vectorMode uint8  // vectorXSAVE, vectorFXSAVE or vectorNone
	tier1Entry uint64 // _rt0_amd64_linux, the Go runtime's own entry point
	xsaveMask  uint64 // state components saved on every switch (XSAVE's RFBM)
	// vectorBytes is how much of a thread's vector area its state takes.
	vectorBytes uintptr
)

// Declared here, implemented in entry_amd64.s.

// start is the ELF entry point.
func start()

// syscallEntry is the SYSCALL target (LSTAR).
func syscallEntry()

// resumeThread returns to the thread in curThread. It does not return.
func resumeThread()

// vdsoClockGettime is the vDSO's __vdso_clock_gettime (C calling convention).
func vdsoClockGettime()

// iretToUser is the last step of resumeThread.
func iretToUser()

// idle waits with interrupts unmasked until one arrives.
func idle()

func rdtsc() uint64
func wrmsr(msr uint32, value uint64)
func outl(port uint16, value uint32)
func outb(port uint16, value uint8)
func rdrand() (v uint64, ok bool)
func halt()

// Tier 0 owns the whole address space and turns guest addresses into pointers with
// x86.Pointer: every address it dereferences has been checked against the mappings
// first (mapped).

// thisCPU is the running vCPU's CPU block.
//
//go:nosplit
func thisCPU() *cpu { return (*cpu)(x86.Pointer(perCPUAddr)) }

// cpuAt is vCPU i's CPU block, through its physical address.
//
//go:nosplit
func cpuAt(i int32) *cpu {
	return (*cpu)(x86.Pointer(uintptr(abi.PerCPUBase + int64(i)&(maxCPUs-1)*abi.PerCPUStride + abi.PerCPUData)))
}

// info is the boot-info block the monitor wrote.
//
//go:nosplit
func info() *abi.BootInfo { return (*abi.BootInfo)(x86.Pointer(abi.BootInfoAddr)) }

func pause()
func readCR2() uint64
func invlpg(va uintptr)
func reloadCR3()

// copyBytes and zeroBytes work on guest addresses tier 0 has validated.
func copyBytes(dst, src, n uintptr)
func zeroBytes(dst, n uintptr)
