package boot

import (
	"encoding/binary"

	"github.com/pithvm/pith/abi"
)

// The vDSO is a minimal ELF shared object at abi.VDSOAddr that exports
// __vdso_clock_gettime, versioned LINUX_2.6, pointing at tier 0's implementation in the
// kernel image: enough for the Go runtime's vDSO parser (runtime/vdso_linux.go) and for
// libc's (glibc's dynamic linker loads it as a library: it needs the version table,
// DT_VERSYM, beside the definitions). Its load offset is zero, so symbol values are
// absolute addresses.
const (
	vdsoDynamic = 0x100
	vdsoHash    = 0x200
	vdsoSymtab  = 0x280
	vdsoStrtab  = 0x300
	vdsoVerdef  = 0x380
	vdsoVersym  = 0x3c0

	linux26Hash = 0x3ae75f6 // ELF hash of "LINUX_2.6"
)

// ELF constants (include/uapi/linux/elf.h).
const (
	etDyn        = 3
	emX86_64     = 62
	ptLoad       = 1
	ptDynamic    = 2
	dtNull       = 0
	dtHash       = 4
	dtStrtab     = 5
	dtSymtab     = 6
	dtStrsz      = 10
	dtSyment     = 11
	dtVerdef     = 0x6ffffffc
	dtVerdefnum  = 0x6ffffffd
	dtVersym     = 0x6ffffff0
	dtSoname     = 14
	stbGlobalFn  = 1<<4 | 2 // STB_GLOBAL, STT_FUNC
	symSize      = 24
	phdrSize     = 56
	ehdrSize     = 64
	dynEntrySize = 16
)

func (k *Kernel) vdsoImage() []byte {
	img := make([]byte, abi.VDSOSize)
	le := binary.LittleEndian
	base := uint64(abi.VDSOAddr)
	strs := "\x00__vdso_clock_gettime\x00LINUX_2.6\x00linux-vdso.so.1\x00"
	const nameClock, nameVersion, nameSoname = 1, 22, 32

	copy(img, "\x7fELF\x02\x01\x01")
	le.PutUint16(img[16:], etDyn)
	le.PutUint16(img[18:], emX86_64)
	le.PutUint32(img[20:], 1)
	le.PutUint64(img[32:], ehdrSize) // e_phoff
	le.PutUint16(img[52:], ehdrSize)
	le.PutUint16(img[54:], phdrSize)
	le.PutUint16(img[56:], 2)

	phdr := func(i int, typ uint32, off, size uint64) {
		p := img[ehdrSize+i*phdrSize:]
		le.PutUint32(p, typ)
		le.PutUint32(p[4:], 5) // R+X
		le.PutUint64(p[8:], off)
		le.PutUint64(p[16:], base+off)
		le.PutUint64(p[24:], base+off)
		le.PutUint64(p[32:], size)
		le.PutUint64(p[40:], size)
		le.PutUint64(p[48:], 8)
	}
	phdr(0, ptLoad, 0, abi.VDSOSize)
	phdr(1, ptDynamic, vdsoDynamic, vdsoHash-vdsoDynamic)

	dyn := [][2]uint64{
		{dtHash, base + vdsoHash}, {dtStrtab, base + vdsoStrtab}, {dtSymtab, base + vdsoSymtab},
		{dtStrsz, uint64(len(strs))}, {dtSyment, symSize},
		{dtVerdef, base + vdsoVerdef}, {dtVerdefnum, 1}, {dtVersym, base + vdsoVersym},
		{dtSoname, nameSoname}, {dtNull, 0},
	}
	for i, d := range dyn {
		le.PutUint64(img[vdsoDynamic+i*dynEntrySize:], d[0])
		le.PutUint64(img[vdsoDynamic+i*dynEntrySize+8:], d[1])
	}
	// SysV hash table with one bucket: bucket[0] = symbol 1, no chain.
	for i, v := range []uint32{1, 2, 1, 0, 0} {
		le.PutUint32(img[vdsoHash+4*i:], v)
	}
	sym := img[vdsoSymtab+symSize:]
	le.PutUint32(sym, nameClock)
	sym[4] = stbGlobalFn
	le.PutUint16(sym[6:], 1) // any defined section
	le.PutUint64(sym[8:], k.vectors[abi.VectorTableClock])
	le.PutUint64(sym[16:], 64)
	copy(img[vdsoStrtab:], strs)
	// One version definition, LINUX_2.6, index 2, with its auxiliary name entry.
	v := img[vdsoVerdef:]
	le.PutUint16(v, 1)     // vd_version
	le.PutUint16(v[4:], 2) // vd_ndx
	le.PutUint16(v[6:], 1) // vd_cnt
	le.PutUint32(v[8:], linux26Hash)
	le.PutUint32(v[12:], 20) // vd_aux
	le.PutUint32(v[20:], nameVersion)
	// Each symbol's version: none for the null symbol, LINUX_2.6 for the clock.
	le.PutUint16(img[vdsoVersym+2:], 2)
	return img
}
