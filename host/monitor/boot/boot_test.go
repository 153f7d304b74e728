package boot

import (
	"encoding/binary"
	"testing"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/host/monitor/memory"
)

// walk translates va through vCPU cpu's page tables, as the MMU would.
func walk(g *memory.Guest, cpu int, va uint64) (pa uint64, perm uint64, ok bool) {
	pa, perm, err := g.Virtual(CR3(cpu)).Translate(va)
	return pa, perm, err == nil
}

func TestPageTables(t *testing.T) {
	g, err := memory.New(1<<30 + 4<<20) // spans two page directories
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := buildPageTables(g, 3); err != nil {
		t.Fatal(err)
	}
	for cpu := 0; cpu < 3; cpu++ {
		if _, _, ok := walk(g, cpu, 0); ok {
			t.Error("page 0 is mapped: nil dereferences would not fault")
		}
		// The first 2 MiB at their physical addresses, all memory in the physmap.
		for _, c := range [][2]uint64{
			{0x1000, 0x1000}, {0x1fffff, 0x1fffff},
			{abi.PhysBase, 0}, {abi.PhysBase + 0x400123, 0x400123},
			{abi.PhysBase + 1<<30, 1 << 30}, {abi.PhysBase + 1<<30 + 4<<20 - 1, 1<<30 + 4<<20 - 1},
		} {
			pa, flags, ok := walk(g, cpu, c[0])
			if !ok || pa != c[1] {
				t.Errorf("cpu %d: va %#x -> %#x (mapped %v), want %#x", cpu, c[0], pa, ok, c[1])
			}
			if flags != pteRW|pteUS {
				t.Errorf("va %#x flags %#x: every page must be writable and U=1 for kvm-pvm", c[0], flags)
			}
		}
		// Everything else is the app's: nothing there yet.
		for _, va := range []uint64{2 << 20, 0x400000, 1 << 30, abi.PhysBase + 1<<30 + 4<<20} {
			if _, _, ok := walk(g, cpu, va); ok {
				t.Errorf("va %#x is mapped", va)
			}
		}
		// The per-vCPU pages are each vCPU's own.
		for va, off := range map[uint64]uint64{abi.PVMPageAddr: abi.PerCPUPVM, abi.PerCPUAddr: abi.PerCPUData} {
			if pa, _, _ := walk(g, cpu, va+8); pa != CPUBlock(cpu)+off+8 {
				t.Errorf("cpu %d: va %#x -> %#x, want its own page %#x", cpu, va+8, pa, CPUBlock(cpu)+off+8)
			}
		}
	}
}

func TestDescriptorTables(t *testing.T) {
	g, _ := memory.New(8 << 20)
	defer g.Close()
	k := &Kernel{}
	for i := range k.vectors {
		k.vectors[i] = 0x400000 + uint64(i)*0x10
	}
	k.vectors[abi.VectorTableStacks] = 0x600000
	if err := k.buildDescriptorTables(g, 2); err != nil {
		t.Fatal(err)
	}
	gate := func(v uint64) uint64 {
		lo, _ := g.Uint64(abi.IDTAddr + 16*v)
		hi, _ := g.Uint64(abi.IDTAddr + 16*v + 8)
		if sel := lo >> 16 & 0xffff; sel != abi.SelKernelCode {
			t.Errorf("vector %d selector %#x", v, sel)
		}
		if typ := lo >> 40 & 0xff; typ != 0x8e {
			t.Errorf("vector %d type %#x, want a present interrupt gate", v, typ)
		}
		return lo&0xffff | (lo>>48&0xffff)<<16 | hi<<32
	}
	for _, v := range []uint64{0, 14, abi.VectorTimer, abi.VectorWakeup, 200, abi.VectorSpurious} {
		if got := gate(v); got != k.vectors[v] {
			t.Errorf("vector %d -> %#x, want %#x", v, got, k.vectors[v])
		}
	}
	for cpu := 0; cpu < 2; cpu++ {
		want := 0x600000 + uint64(cpu+1)*abi.KStackSize
		tss, _ := g.Slice(TSS(cpu), tssSize)
		if rsp0 := binary.LittleEndian.Uint64(tss[4:]); rsp0 != want {
			t.Errorf("cpu %d: TSS.RSP0 %#x, want %#x", cpu, rsp0, want)
		}
		var block abi.CPU
		b, _ := g.Slice(CPUBlock(cpu)+abi.PerCPUData, uint64(binary.Size(block)))
		binary.Decode(b, binary.LittleEndian, &block)
		if block.ID != uint64(cpu) || block.KStackTop != want || block.PVMGPA != CPUBlock(cpu)+abi.PerCPUPVM {
			t.Errorf("cpu %d block %+v", cpu, block)
		}
	}
	desc, _ := g.Uint64(abi.GDTAddr + abi.SelTSS)
	if base := desc>>16&0xffffff | (desc>>56)<<24; base != TSS(0) || desc>>40&0xff != 0x89 {
		t.Errorf("TSS descriptor %#x", desc)
	}
}

func TestBootInfo(t *testing.T) {
	g, _ := memory.New(8 << 20)
	defer g.Close()
	k := &Kernel{End: 0x700000}
	c := Config{CPUs: 1, Argv: []string{"pith-kernel", "selftest"}, Env: []string{"A=1"}, TSCKHz: 2_000_000, Flags: abi.FlagPVM}
	if err := k.writeBootInfo(g, c); err != nil {
		t.Fatal(err)
	}
	var bi abi.BootInfo
	b, _ := g.Slice(abi.BootInfoAddr, uint64(binary.Size(bi)))
	if _, err := binary.Decode(b, binary.LittleEndian, &bi); err != nil {
		t.Fatal(err)
	}
	if bi.Magic != abi.BootMagic || bi.MemSize != 8<<20 || bi.KernelEnd != 0x700000 || bi.Flags != abi.FlagPVM || bi.CPUs != 1 {
		t.Errorf("boot info %+v", bi)
	}
	// 2 GHz: 2M ticks are 1 ms, and back.
	if ns := bi.NsMult * 2_000_000 >> 32; ns != 1_000_000 {
		t.Errorf("NsMult %d gives %d ns for 2M ticks", bi.NsMult, ns)
	}
	if ticks := bi.TSCMult * 1_000_000 >> 32; ticks != 2_000_000 {
		t.Errorf("TSCMult %d gives %d ticks for 1 ms", bi.TSCMult, ticks)
	}
	cmd, _ := g.Slice(abi.CmdlineAddr, bi.CmdlineLen)
	if string(cmd) != "pith-kernel\x00selftest\x00A=1\x00" || bi.Argc != 2 {
		t.Errorf("command line block %q", cmd)
	}
	if binary.Size(bi) > abi.CmdlineAddr-abi.BootInfoAddr {
		t.Errorf("BootInfo is %d bytes, overlapping the command line", binary.Size(bi))
	}
	c.Argv = []string{string(make([]byte, abi.CmdlineMax))}
	if k.writeBootInfo(g, c) == nil {
		t.Error("oversized command line accepted")
	}
}
