package tier0

import (
	"math/bits"
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/x86"
)

// Memory. All guest-physical memory is identity-mapped (built by the monitor) so tier 0
// reaches any frame at its physical address. Tier-1 mappings live above that. A mapping is
// backed on first access, one 2 MiB block at a time: a block wholly inside an accessible
// region gets a 2 MiB page, the edges of a region get 4 KiB pages. So a guest page fault
// (~20 us on kvm-pvm) happens once per 2 MiB, not per page, and mappings that are never
// touched (the Go runtime maps tens of MiB it never uses) cost nothing. Backing a page only
// writes a page-table entry; the host supplies the memory itself on the first touch.

const (
	pageSize    = 4096
	hugeSize    = 2 << 20
	maxMemBytes = 16 << 30
	physWords   = maxMemBytes / pageSize / 64

	pteP        = 1
	pteRW       = 2
	pteUS       = 4 // kvm-pvm requires U=1 on every page, supervisor pages included
	ptePS       = 0x80
	pteAddrMask = 0x000ffffffffff000
	pteTable    = pteP | pteRW | pteUS

	maxRegions = 1024
	maxFlushes = 16
)

// region is a range of tier-1 address space that is mapped (prot != 0) or reserved.
type region struct {
	start, end uint64
	prot       uint64
}

var (
	memSize   uint64
	userFloor uint64            // tier-1 mappings start here: above guest memory and the first GiB
	physUsed  [physWords]uint64 // one bit per 4 KiB frame
	physWordN uint64            // words of physUsed covering memSize
	hintSmall uint64
	hintHuge  uint64

	regions  [maxRegions]region
	nregions int32
	mmapTop  uint64

	flushVA  [maxFlushes]uintptr
	nflush   int32
	relStart uint64
	relLen   uint64
	relKeep  bool // the queued range stays allocated (discard)
)

//go:nosplit
func initMemory() {
	bi := info()
	memSize = bi.MemSize
	if memSize > maxMemBytes {
		memSize = maxMemBytes
	}
	userFloor = abi.LowMapEnd
	physWordN = memSize / pageSize / 64
	// Everything below the kernel's end (boot structures, page tables, the image) is taken.
	end := (bi.KernelEnd + hugeSize - 1) &^ (hugeSize - 1)
	for w := uint64(0); w < end/pageSize/64 && w < physWordN; w++ {
		physUsed[w&(physWords-1)] = ^uint64(0)
	}
	hintSmall = end / pageSize / 64
	hintHuge = hintSmall
	for f := bi.AppAddr / pageSize; f < (bi.AppAddr+bi.AppSize+pageSize-1)/pageSize && f/64 < physWordN; f++ {
		physUsed[(f/64)&(physWords-1)] |= 1 << (f % 64)
	}
	mmapTop = abi.MmapTop
	// The physmap, where the kernel itself lives, is never tier 1's to map or unmap.
	insertRegion(abi.PhysBase, abi.PhysBase+abi.PhysSpan, protRW)
}

// phys is where tier 0 reaches guest-physical address pa: in the physmap.
//
//go:nosplit
func phys(pa uint64) uintptr { return uintptr(abi.PhysBase + pa) }

//go:nosplit
func pteAt(table, idx uint64) *uint64 {
	return (*uint64)(x86.Pointer(phys(table&pteAddrMask + (idx&511)*8)))
}

// allocPage takes a free 4 KiB frame. Frames are zero: fresh from the host, or released
// to it when freed.
//
//go:nosplit
func allocPage() (uint64, bool) {
	for n := uint64(0); n < physWordN; n++ {
		w := hintSmall + n
		if w >= physWordN {
			w -= physWordN
		}
		v := physUsed[w&(physWords-1)]
		if v == ^uint64(0) {
			continue
		}
		bit := uint64(bits.TrailingZeros64(^v))
		physUsed[w&(physWords-1)] = v | 1<<bit
		hintSmall = w
		countFrames(1)
		return (w*64 + bit) * pageSize, true
	}
	info().OutOfMemory = 1
	return 0, false
}

// allocHuge takes a free 2 MiB-aligned run of 512 frames.
//
//go:nosplit
func allocHuge() (uint64, bool) {
	const words = hugeSize / pageSize / 64
	groups := physWordN / words
	for n := uint64(0); n < groups; n++ {
		g := hintHuge/words + n
		if g >= groups {
			g -= groups
		}
		free := true
		for k := uint64(0); k < words; k++ {
			if physUsed[(g*words+k)&(physWords-1)] != 0 {
				free = false
				break
			}
		}
		if !free {
			continue
		}
		for k := uint64(0); k < words; k++ {
			physUsed[(g*words+k)&(physWords-1)] = ^uint64(0)
		}
		hintHuge = g * words
		countFrames(hugeSize / pageSize)
		return g * hugeSize, true
	}
	return 0, false
}

//go:nosplit
func countFrames(n uint64) {
	st := &info().Stats
	st.Frames += n
	if st.Frames > st.FramesPeak {
		st.FramesPeak = st.Frames
	}
}

// freeFrames gives n frames at pa back: their memory goes back to the host, and they
// become free for reuse only once it has (releaseFlush), so that allocPage's promise of
// zeroed frames holds even for an allocation between the two.
//
//go:nosplit
func freeFrames(pa, n uint64) {
	info().Stats.Frames -= n
	release(pa, n*pageSize, false)
}

// release queues [pa, pa+n) to be handed back to the host (the next touch reads zeros)
// and, unless keep (MADV_DONTNEED: the frames stay mapped), freed. Adjacent ranges are
// merged into one exit.
//
//go:nosplit
func release(pa, n uint64, keep bool) {
	if relLen != 0 && relStart+relLen == pa && relKeep == keep {
		relLen += n
		return
	}
	releaseFlush()
	relStart, relLen, relKeep = pa, n, keep
}

// releaseFlush hands the queued range to the host and marks its frames free.
//
//go:nosplit
func releaseFlush() {
	if relLen == 0 {
		return
	}
	bi := info()
	bi.ReleaseAddr, bi.ReleaseLen = relStart, relLen
	outl(abi.PortRelease, 0)
	if !relKeep {
		for f := relStart / pageSize; f < (relStart+relLen)/pageSize; f++ {
			physUsed[(f/64)&(physWords-1)] &^= 1 << (f % 64)
		}
	}
	relLen = 0
}

// pdeFor returns the page-directory entry covering va, creating the upper levels if create.
//
//go:nosplit
func pdeFor(va uint64, create bool) *uint64 {
	table := uint64(abi.PML4Addr)
	for shift := uint64(39); shift > 21; shift -= 9 {
		e := pteAt(table, va>>shift)
		if *e&pteP == 0 {
			if !create {
				return nil
			}
			pa, ok := allocPage()
			if !ok {
				return nil
			}
			setEntry(e, pa|pteTable)
		}
		table = *e
	}
	return pteAt(table, va>>21)
}

// setEntry writes a PML4, PDPT or PD entry. Walks go through vCPU 0's tables; the other
// vCPUs have their own copies of the PML4 and of the first PDPT and PD (abi layout), which
// get the same entry. Page tables (the last level) are shared, but for the first 2 MiB,
// which tier 1 never maps.
//
//go:nosplit
func setEntry(e *uint64, v uint64) {
	*e = v
	p := uintptr(unsafe.Pointer(e))
	base := phys(abi.PerCPUBase)
	if p < base+abi.PerCPUPML4 || p >= base+abi.PerCPUPD+pageSize {
		return
	}
	for i := int32(1); i < ncpu; i++ {
		*(*uint64)(x86.Pointer(p + uintptr(i)*abi.PerCPUStride)) = v
	}
}

// backRange maps [start, end) (page aligned) to fresh frames where nothing is mapped yet.
//
//go:nosplit
func backRange(start, end uint64) bool {
	for va := start; va < end; {
		blockEnd := (va + hugeSize) &^ (hugeSize - 1)
		pde := pdeFor(va, true)
		if pde == nil {
			return false
		}
		if *pde&(pteP|ptePS) == pteP|ptePS {
			va = blockEnd
			continue
		}
		if *pde == 0 && va&(hugeSize-1) == 0 && blockEnd <= end {
			if pa, ok := allocHuge(); ok {
				setEntry(pde, pa|pteTable|ptePS)
				va = blockEnd
				continue
			}
		}
		if *pde == 0 {
			pt, ok := allocPage()
			if !ok {
				return false
			}
			setEntry(pde, pt|pteTable)
		}
		for ; va < blockEnd && va < end; va += pageSize {
			pte := pteAt(*pde, va>>12)
			if *pte&pteP == 0 {
				pa, ok := allocPage()
				if !ok {
					return false
				}
				*pte = pa | pteTable
			}
		}
	}
	return true
}

// unbackRange unmaps [start, end) and frees its frames.
//
//go:nosplit
func unbackRange(start, end uint64) {
	for va := start; va < end; {
		blockEnd := (va + hugeSize) &^ (hugeSize - 1)
		pde := pdeFor(va, false)
		if pde == nil || *pde&pteP == 0 {
			va = blockEnd
			continue
		}
		if *pde&ptePS != 0 {
			if va&(hugeSize-1) == 0 && blockEnd <= end {
				retireFrames(*pde&pteAddrMask, hugeSize/pageSize)
				setEntry(pde, 0)
				flushTLB(va)
				va = blockEnd
				continue
			}
			// Split the huge page so part of it can go.
			pt, ok := allocPage()
			if !ok {
				va = blockEnd // cannot split: leave it mapped
				continue
			}
			base := *pde & pteAddrMask
			for i := uint64(0); i < 512; i++ {
				*pteAt(pt, i) = (base + i*pageSize) | pteTable
			}
			setEntry(pde, pt|pteTable)
			flushTLB(va &^ (hugeSize - 1))
		}
		for ; va < blockEnd && va < end; va += pageSize {
			pte := pteAt(*pde, va>>12)
			if *pte&pteP != 0 {
				retireFrames(*pte&pteAddrMask, 1)
				*pte = 0
				flushTLB(va)
			}
		}
	}
	releaseFlush()
	flushTLBDone()
}

// discardRange implements MADV_DONTNEED: the pages stay mapped and read zeros next time.
//
//go:nosplit
func discardRange(start, end uint64) {
	for va := start; va < end; {
		blockEnd := (va + hugeSize) &^ (hugeSize - 1)
		if blockEnd > end {
			blockEnd = end
		}
		pde := pdeFor(va, false)
		if pde == nil || *pde&pteP == 0 {
			va = blockEnd
			continue
		}
		if *pde&ptePS != 0 {
			release(*pde&pteAddrMask+va&(hugeSize-1), blockEnd-va, true)
			va = blockEnd
			continue
		}
		for ; va < blockEnd; va += pageSize {
			if pte := pteAt(*pde, va>>12); *pte&pteP != 0 {
				release(*pte&pteAddrMask, pageSize, true)
			}
		}
	}
	releaseFlush()
}

//go:nosplit
func flushTLB(va uint64) {
	if nflush < maxFlushes {
		flushVA[nflush&(maxFlushes-1)] = uintptr(va)
	}
	nflush++
}

//go:nosplit
func flushTLBDone() {
	if nflush > maxFlushes {
		reloadCR3()
	} else {
		for i := int32(0); i < nflush; i++ {
			invlpg(flushVA[i&(maxFlushes-1)])
		}
	}
	if nflush > 0 && ncpu > 1 {
		// Other vCPUs may still hold the old translations: they flush when they next
		// enter tier 0 (syncTLB), and the frames wait in limbo until all have.
		tlbGen++
		thisCPU().tlbGen = tlbGen
	}
	nflush = 0
}

// TLB shootdown without IPIs. Unmapping bumps tlbGen; every vCPU reloads CR3 when it
// finds its tlbGen behind (on each entry to tier 0 and on waking from idle), and frames
// unmapped at generation g are reused only once every vCPU has reached g. A vCPU that
// runs a thread without trapping keeps its stale translations meanwhile, but they point
// at frames nobody else can have. No vCPU ever waits for another.
var (
	tlbGen uint64
	limbo  [maxLimbo]limboRange
	nlimbo int32
	lost   uint64 // frames leaked because limbo was full
)

const maxLimbo = 256

type limboRange struct {
	pa, n, gen uint64
}

// syncTLB brings c's TLB up to tlbGen.
//
//go:nosplit
func syncTLB(c *cpu) {
	if c.tlbGen != tlbGen {
		reloadCR3()
		c.tlbGen = tlbGen
	}
}

// retireFrames frees n frames at pa that were just unmapped: at once with one vCPU, else
// through limbo.
//
//go:nosplit
func retireFrames(pa, n uint64) {
	if fileFrame(pa) {
		return // a file's pages belong to no allocator
	}
	if ncpu <= 1 {
		freeFrames(pa, n)
		return
	}
	if nlimbo >= maxLimbo {
		lost += n
		return
	}
	limbo[nlimbo&(maxLimbo-1)] = limboRange{pa, n, tlbGen + 1}
	nlimbo++
}

// reapLimbo frees the limbo ranges every busy vCPU has flushed past (idle vCPUs flush
// before they run anything).
//
//go:nosplit
func reapLimbo() {
	if nlimbo == 0 {
		return
	}
	min := tlbGen
	for i := int32(0); i < ncpu; i++ {
		if c := cpuAt(i); c.idle == 0 && c.tlbGen < min {
			min = c.tlbGen
		}
	}
	for i := int32(0); i < nlimbo; {
		r := limbo[i&(maxLimbo-1)]
		if r.gen > min {
			i++
			continue
		}
		freeFrames(r.pa, r.n)
		nlimbo--
		limbo[i&(maxLimbo-1)] = limbo[nlimbo&(maxLimbo-1)]
	}
	releaseFlush()
}

// present reports whether va is mapped to a frame now.
//
//go:nosplit
func present(va uint64) bool {
	pde := pdeFor(va, false)
	if pde == nil || *pde&pteP == 0 {
		return false
	}
	return *pde&ptePS != 0 || *pteAt(*pde, va>>12)&pteP != 0
}

// mapped reports whether every page of [p, p+n) is accessible, backing what is not yet:
// a tier-1 pointer tier 0 may then read or write.
//
//go:nosplit
func mapped(p, n uintptr) bool {
	if p+n < p || uint64(p+n) > abi.UserVAEnd {
		return false
	}
	for va := uint64(p) &^ (pageSize - 1); va < uint64(p+n); va += pageSize {
		if !present(va) && !backOnAccess(va) {
			return false
		}
	}
	return true
}

// backOnAccess backs the part of va's 2 MiB block that lies in va's region, if that region
// is accessible. It is the page-fault path for tier-1 memory.
//
//go:nosplit
func backOnAccess(va uint64) bool {
	i := regionIndex(va)
	if i < 0 {
		return false
	}
	r := regionAt(i)
	if r.prot == protNone {
		return false
	}
	lo, hi := va&^(hugeSize-1), (va+hugeSize)&^(hugeSize-1)
	if lo < r.start {
		lo = r.start
	}
	if hi > r.end {
		hi = r.end
	}
	if !backRange(lo, hi) {
		crash(abi.CrashOutOfMem, &current().regs, va, 0)
	}
	return true
}

// regionIndex finds the region containing va, or -1.
//
//go:nosplit
func regionIndex(va uint64) int32 {
	for i := int32(0); i < nregions; i++ {
		if r := regionAt(i); r.start <= va && va < r.end {
			return i
		}
	}
	return -1
}

// covered reports whether regions cover all of [start, end).
//
//go:nosplit
func covered(start, end uint64) bool {
	for start < end {
		i := regionIndex(start)
		if i < 0 {
			return false
		}
		start = regionAt(i).end
	}
	return true
}

// Regions: sorted, non-overlapping, adjacent ones merged.

//go:nosplit
func regionAt(i int32) *region { return &regions[uint32(i)&(maxRegions-1)] }

//go:nosplit
func overlaps(start, end uint64) bool {
	for i := int32(0); i < nregions; i++ {
		r := regionAt(i)
		if r.start < end && start < r.end {
			return true
		}
	}
	return false
}

// insertRegion adds [start, end), which must not overlap a region, merging it with
// neighbours of the same protection.
//
//go:nosplit
func insertRegion(start, end, prot uint64) bool {
	i := int32(0)
	for i < nregions && regionAt(i).start < start {
		i++
	}
	if i > 0 && regionAt(i-1).end == start && regionAt(i-1).prot == prot {
		regionAt(i - 1).end = end
		if i < nregions && regionAt(i).start == end && regionAt(i).prot == prot {
			regionAt(i - 1).end = regionAt(i).end
			removeRegionAt(i)
		}
		return true
	}
	if i < nregions && regionAt(i).start == end && regionAt(i).prot == prot {
		regionAt(i).start = start
		return true
	}
	if nregions >= maxRegions {
		return false
	}
	for j := nregions; j > i; j-- {
		*regionAt(j) = *regionAt(j - 1)
	}
	*regionAt(i) = region{start, end, prot}
	nregions++
	return true
}

//go:nosplit
func removeRegionAt(i int32) {
	for j := i; j+1 < nregions; j++ {
		*regionAt(j) = *regionAt(j + 1)
	}
	nregions--
}

// removeRegion cuts [start, end) out of the region list.
//
//go:nosplit
func removeRegion(start, end uint64) bool {
	for i := int32(0); i < nregions; i++ {
		r := regionAt(i)
		if r.end <= start || end <= r.start {
			continue
		}
		switch {
		case start <= r.start && r.end <= end:
			removeRegionAt(i)
			i--
		case start <= r.start:
			r.start = end
		case r.end <= end:
			r.end = start
		default: // a hole in the middle: split
			if nregions >= maxRegions {
				return false
			}
			tail := region{end, r.end, r.prot}
			r.end = start
			for j := nregions; j > i+1; j-- {
				*regionAt(j) = *regionAt(j - 1)
			}
			*regionAt(i + 1) = tail
			nregions++
			return true
		}
	}
	return true
}

// findFree picks an unused range of n bytes below mmapTop (2 MiB aligned when n allows
// 2 MiB pages), searching downwards.
//
//go:nosplit
func findFree(n uint64) uint64 {
	align := uint64(pageSize)
	if n >= hugeSize {
		align = hugeSize
	}
	top := mmapTop
	for top > userFloor+n {
		start := (top - n) &^ (align - 1)
		blocked := false
		for i := int32(0); i < nregions; i++ {
			r := regionAt(i)
			if r.start < start+n && start < r.end {
				top = r.start
				blocked = true
				break
			}
		}
		if !blocked {
			mmapTop = start
			return start
		}
	}
	return 0
}
