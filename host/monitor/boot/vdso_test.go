package boot

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"testing"

	"github.com/pithvm/pith/abi"
)

// The vDSO is a shared object libc's dynamic linker can load: it has a dynamic section
// naming it, its symbols, their versions (DT_VERSYM: glibc's dynamic linker reads it
// whenever there are version definitions) and the definitions, and the clock symbol's
// version is LINUX_2.6. It has no section headers, as the dynamic linker reads none: so
// it is read here as that linker does, from PT_DYNAMIC.
func TestVDSOIsALoadableSharedObject(t *testing.T) {
	k := &Kernel{}
	k.vectors[abi.VectorTableClock] = 0x1234
	img := k.vdsoImage()
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	at := func(addr uint64) []byte { return img[addr-abi.VDSOAddr:] }
	str := func(strtab uint64, off uint64) string {
		b := at(strtab + off)
		return string(b[:bytes.IndexByte(b, 0)])
	}
	dyn := map[elf.DynTag]uint64{}
	for _, p := range f.Progs {
		if p.Type != elf.PT_DYNAMIC {
			continue
		}
		for d := at(p.Vaddr); le.Uint64(d) != uint64(elf.DT_NULL); d = d[16:] {
			dyn[elf.DynTag(le.Uint64(d))] = le.Uint64(d[8:])
		}
	}
	for _, tag := range []elf.DynTag{elf.DT_HASH, elf.DT_SYMTAB, elf.DT_STRTAB, elf.DT_VERSYM, elf.DT_VERDEF, elf.DT_SONAME} {
		if _, ok := dyn[tag]; !ok {
			t.Fatalf("no %v in the dynamic section %v", tag, dyn)
		}
	}
	if name := str(dyn[elf.DT_STRTAB], dyn[elf.DT_SONAME]); name != "linux-vdso.so.1" {
		t.Errorf("DT_SONAME %q, want linux-vdso.so.1", name)
	}
	sym := at(dyn[elf.DT_SYMTAB] + 24) // symbol 1
	if name, value := str(dyn[elf.DT_STRTAB], uint64(le.Uint32(sym))), le.Uint64(sym[8:]); name != "__vdso_clock_gettime" || value != 0x1234 {
		t.Errorf("symbol 1: %s at %#x, want __vdso_clock_gettime at 0x1234", name, value)
	}
	ndx := le.Uint16(at(dyn[elf.DT_VERSYM] + 2))
	def := at(dyn[elf.DT_VERDEF])
	for le.Uint16(def[4:]) != ndx {
		if le.Uint32(def[16:]) == 0 {
			t.Fatalf("symbol 1 has version index %d, which no definition has", ndx)
		}
		def = def[le.Uint32(def[16:]):]
	}
	if v := str(dyn[elf.DT_STRTAB], uint64(le.Uint32(def[le.Uint32(def[12:]):]))); v != "LINUX_2.6" {
		t.Errorf("symbol 1's version is %s, want LINUX_2.6", v)
	}
}
