package tier0

import (
	"sync/atomic"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
	"github.com/pithvm/pith/guest/x86"
)

const (
	stackReserve  = 8 << 20
	stackBacked   = hugeSize
	cpuidXSAVE    = 1 << 26 // CPUID.1:ECX
	xsaveMXCSR    = 24      // offset of MXCSR in the legacy XSAVE/FXSAVE area
	defaultMXCSR  = 0x1f80
	defaultFCW    = 0x37f
	auxvEntries   = 16
	initialRFLAGS = 0x202 // IF set
)

// boot is called once by start, on the tier-0 stack. It sets up time, memory and the first
// thread, which start then enters at tier 1's entry point with a Linux initial stack.
//
//go:nosplit
func boot() {
	if info().Flags&abi.FlagForked != 0 {
		forkResume()
		return
	}
	lockTier0()
	bi := info()
	if bi.Magic != abi.BootMagic || bi.Version != abi.Version || bi.CPUs < 1 || bi.CPUs > maxCPUs {
		for {
			outl(abi.PortCrash, uint32(abi.CrashBadState))
		}
	}
	ncpu = int32(bi.CPUs)
	bi.Stats.CPUsOnline = 1
	seedState = bi.Seed[0] ^ bi.Seed[1]
	initTime()
	initTimer()
	initVectorState()
	patchTier1Site()
	initMemory()
	initFDs()
	i := newThread()
	t := threadAt(i)
	t.state = threadRunnable
	setCurrent(i)
	thisCPU().acctSince = rdtsc()
	*(*uint16)(x86.Pointer(t.xsave)) = defaultFCW
	*(*uint32)(x86.Pointer(t.xsave + xsaveMXCSR)) = defaultMXCSR
	sp := initialStack()
	if sp == 0 {
		crash(abi.CrashOutOfMem, &t.regs, 0, 1)
	}
	t.regs.RIP = tier1Entry
	t.regs.CS = abi.SelUserCode
	t.regs.RFLAGS = initialRFLAGS
	t.regs.RSP = sp
	t.regs.SS = abi.SelUserData
	atomic.StoreUint32(&bootDone, 1)
}

// apStart is where every vCPU but the first goes once its stack exists: it waits for vCPU
// 0 to finish booting, then looks for work.
//
//go:nosplit
func apStart() {
	for atomic.LoadUint32(&bootDone) == 0 {
		pause()
	}
	lockTier0()
	info().Stats.CPUsOnline++
	initTimer()
	thisCPU().cur = -1
	schedule(false)
}

// Vector state components tier 0 saves (XCR0 bits): x87, SSE, AVX, the three AVX-512
// components and PKRU. AMX tile state is left out: nothing in the guest uses it, and its
// 8 KiB would not fit the per-thread area.
const xsaveComponents = 0x2e7

// initVectorState picks how thread vector state is saved. The mask and size come from
// XCR0 as the CPU applies it (XGETBV) and CPUID's per-component layout: on kvm-pvm the
// host's XCR0 is in force while CPUID leaf 0xD's totals describe the vCPU's (measured:
// 576 bytes reported, 2696 written), so the totals cannot be trusted.
//
//go:nosplit
func initVectorState() {
	if vectorMode != vectorXSAVE {
		return
	}
	_, _, ecx, _ := x86.CPUID(1, 0)
	if ecx&cpuidXSAVE == 0 {
		vectorMode = vectorFXSAVE
		vectorBytes = 512
		return
	}
	xsaveMask = x86.XCR0() & xsaveComponents
	end := uint32(576) // legacy area and header
	for i := uint32(2); i < 10; i++ {
		if xsaveMask&(1<<i) == 0 {
			continue
		}
		size, offset, _, _ := x86.CPUID(0xd, i)
		if offset+size > end {
			end = offset + size
		}
	}
	vectorBytes = uintptr(end)
	if end > xsaveAreaSize {
		vectorMode = vectorFXSAVE
		vectorBytes = 512
	}
}

// initialStack maps the first thread's stack and lays out what Linux gives a new process
// (argc, argv, envp, auxv, the strings and AT_RANDOM's bytes), returning its stack pointer.
//
//go:nosplit
func initialStack() uint64 {
	bi := info()
	base := uint64(abi.Tier1StackTop - stackReserve)
	if !insertRegion(base, abi.Tier1StackTop, protRW) || !backRange(abi.Tier1StackTop-stackBacked, abi.Tier1StackTop) {
		return 0
	}
	n := bi.CmdlineLen
	if n > abi.CmdlineMax {
		n = abi.CmdlineMax
	}
	// Strings first, at the top.
	sp := uint64(abi.Tier1StackTop) - n - 64
	sp &^= 15
	strings := sp
	copyBytes(uintptr(strings), abi.CmdlineAddr, uintptr(n))
	platform := sp + n
	putString(uintptr(platform), "x86_64\x00")
	random := platform + 16
	for i := uint64(0); i < 16; i += 8 {
		*(*uint64)(x86.Pointer(uintptr(random + i))) = randomWord()
	}
	// The block holds bi.Argc argument strings, then the environment's, each ending in NUL.
	total := uint64(0)
	for off := uint64(0); off < n; off++ {
		if *(*byte)(x86.Pointer(uintptr(strings + off))) == 0 {
			total++
		}
	}
	argc := bi.Argc
	if argc > total {
		argc = total
	}
	words := 1 + total + 2 + 2*auxvEntries
	sp = (sp - words*8) &^ 15
	w := sp
	putWord(&w, argc)
	i := uint64(0)
	for off := uint64(0); off < n; i++ {
		if i == argc {
			putWord(&w, 0) // end of argv
		}
		putWord(&w, strings+off)
		for off < n && *(*byte)(x86.Pointer(uintptr(strings + off))) != 0 {
			off++
		}
		off++
	}
	if argc == total {
		putWord(&w, 0)
	}
	putWord(&w, 0) // end of envp
	_, _, _, edx := x86.CPUID(1, 0)
	putAux(&w, linux.AT_PAGESZ, pageSize)
	putAux(&w, linux.AT_CLKTCK, 100)
	putAux(&w, linux.AT_HWCAP, uint64(edx))
	putAux(&w, linux.AT_ENTRY, tier1Entry)
	putAux(&w, linux.AT_UID, 0)
	putAux(&w, linux.AT_EUID, 0)
	putAux(&w, linux.AT_GID, 0)
	putAux(&w, linux.AT_EGID, 0)
	putAux(&w, linux.AT_SECURE, 0)
	putAux(&w, linux.AT_RANDOM, random)
	putAux(&w, linux.AT_PLATFORM, platform)
	putAux(&w, linux.AT_EXECFN, strings)
	putAux(&w, linux.AT_SYSINFO_EHDR, abi.VDSOAddr)
	putAux(&w, linux.AT_NULL, 0)
	return sp
}

//go:nosplit
func putAux(w *uint64, key, value uint64) {
	putWord(w, key)
	putWord(w, value)
}

//go:nosplit
func putWord(w *uint64, v uint64) {
	*(*uint64)(x86.Pointer(uintptr(*w))) = v
	*w += 8
}
