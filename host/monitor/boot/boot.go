package boot

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/host/monitor/memory"
)

// Kernel is a validated pith kernel ELF. Its segments are mapped into guest memory
// straight from the file (Install), so the kernel's pages come from the host's page cache.
type Kernel struct {
	Path     string
	Entry    uint64
	End      uint64 // first byte after the loaded image, page aligned
	file     *os.File
	vectors  [abi.VectorTableLen]uint64
	segments []segment
	symbols  Symbols // read on first Symbolize
	// syscallSite is tier 1's own system-call site (abi.BootInfo.Tier1SyscallSite); 0
	// if the kernel's Go runtime does not have the expected code.
	syscallSite uint64
}

type segment struct {
	addr   uint64
	off    int64 // file offset
	filesz uint64
	mem    uint64
}

type symbol struct {
	addr, size uint64
	name       string
}

// LoadKernel opens and checks the kernel ELF at path. Close releases it.
func LoadKernel(path string) (*Kernel, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("kernel %s does not exist: build it with `make kernel` or set PITH_KERNEL", path)
		}
		return nil, fmt.Errorf("kernel: %w", err)
	}
	k, err := loadKernel(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return k, nil
}

func loadKernel(path string, f *os.File) (*Kernel, error) {
	ef, err := elf.NewFile(f)
	if err != nil {
		return nil, fmt.Errorf("kernel %s is not an ELF file: %v", path, err)
	}
	if ef.Class != elf.ELFCLASS64 || ef.Machine != elf.EM_X86_64 || ef.Type != elf.ET_EXEC {
		return nil, fmt.Errorf("kernel %s is not a static x86-64 executable (%v %v %v)", path, ef.Class, ef.Machine, ef.Type)
	}
	k := &Kernel{Path: path, Entry: ef.Entry, file: f}
	for _, p := range ef.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		pa := p.Vaddr - abi.PhysBase // linked to run in the physmap
		if p.Vaddr < abi.PhysBase+abi.KernelBase || p.Memsz < p.Filesz || pa+p.Memsz < pa || p.Memsz > maxMemory ||
			p.Vaddr%0x1000 != p.Off%0x1000 {
			return nil, fmt.Errorf("kernel %s: segment at %#x+%#x is outside the kernel area or misaligned (built without make kernel?)", path, p.Vaddr, p.Memsz)
		}
		k.segments = append(k.segments, segment{addr: pa, off: int64(p.Off), filesz: p.Filesz, mem: p.Memsz})
		if end := (pa + p.Memsz + 0xfff) &^ 0xfff; end > k.End {
			k.End = end
		}
	}
	if len(k.segments) == 0 || k.Entry < abi.PhysBase+abi.KernelBase || k.Entry >= abi.PhysBase+k.End {
		return nil, fmt.Errorf("kernel %s: no loadable code at its entry point %#x", path, k.Entry)
	}
	table, err := findSymbol(ef, abi.VectorTableSymbol)
	if err != nil {
		return nil, fmt.Errorf("kernel %s is not a pith kernel: %v", path, err)
	}
	if table.Size != abi.VectorTableLen*8 {
		return nil, fmt.Errorf("kernel %s: %s is %d bytes, this monitor expects %d (kernel and monitor from different pith versions?)",
			path, table.Name, table.Size, abi.VectorTableLen*8)
	}
	b, err := k.read(table.Value, table.Size)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %v", path, err)
	}
	for i := range k.vectors {
		k.vectors[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	k.syscallSite = tier1SyscallSite(k, ef)
	return k, nil
}

// tier1SyscallSite finds the last two instructions (MOVQ BX, DI; SYSCALL) of the function
// the kernel's Go runtime makes its system calls with, which tier 0 rewrites so that tier
// 1 enters the app without a trap; 0 where the function is not the one expected.
func tier1SyscallSite(k *Kernel, ef *elf.File) uint64 {
	p := &abi.FastCallPatterns[0]
	fn, err := findSymbol(ef, p.Name)
	if err != nil {
		return 0
	}
	code, err := k.read(fn.Value, uint64(len(p.Code)))
	if err != nil || !bytes.Equal(code, p.Code) {
		return 0
	}
	return fn.Value + uint64(p.Patch)
}

// findSymbol scans the symbol table for one name without decoding every symbol (the Go
// kernel has thousands; decoding them all cost ~1 ms of each boot).
func findSymbol(ef *elf.File, name string) (elf.Symbol, error) {
	symtab, strtab := ef.Section(".symtab"), ef.Section(".strtab")
	if symtab == nil || strtab == nil {
		return elf.Symbol{}, errors.New("no symbol table (was it stripped?)")
	}
	syms, err := symtab.Data()
	if err != nil {
		return elf.Symbol{}, err
	}
	strs, err := strtab.Data()
	if err != nil {
		return elf.Symbol{}, err
	}
	const entSize = 24 // Elf64_Sym
	want := []byte(name)
	for off := entSize; off+entSize <= len(syms); off += entSize {
		n := binary.LittleEndian.Uint32(syms[off:])
		if int(n)+len(want) >= len(strs) || strs[int(n)+len(want)] != 0 || !bytes.Equal(strs[n:int(n)+len(want)], want) {
			continue
		}
		return elf.Symbol{
			Name:  name,
			Value: binary.LittleEndian.Uint64(syms[off+8:]),
			Size:  binary.LittleEndian.Uint64(syms[off+16:]),
		}, nil
	}
	return elf.Symbol{}, fmt.Errorf("no %s symbol", name)
}

// read returns file-backed image bytes at virtual [addr, addr+n).
func (k *Kernel) read(addr, n uint64) ([]byte, error) {
	addr -= abi.PhysBase
	for _, s := range k.segments {
		if addr >= s.addr && addr+n <= s.addr+s.filesz {
			b := make([]byte, n)
			if _, err := k.file.ReadAt(b, s.off+int64(addr-s.addr)); err != nil {
				return nil, err
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("%#x+%#x is not in the image", addr, n)
}

// Lookup returns the address of the kernel's symbol name.
func (k *Kernel) Lookup(name string) (uint64, bool) {
	ef, err := elf.NewFile(k.file)
	if err != nil {
		return 0, false
	}
	s, err := findSymbol(ef, name)
	return s.Value, err == nil
}

// Close releases the kernel file.
func (k *Kernel) Close() error { return k.file.Close() }

// Symbolize names the function containing pc, as "name+0xoff", or "" if unknown.
func (k *Kernel) Symbolize(pc uint64) string {
	name, off := k.Symbols().Find(pc)
	if name == "" {
		return ""
	}
	return fmt.Sprintf("%s+%#x", name, off)
}

// Symbols are the kernel's function symbols.
func (k *Kernel) Symbols() Symbols {
	if k.symbols == nil {
		k.symbols = ReadSymbols(k.file)
	}
	return k.symbols
}

// Symbols are an executable's functions, sorted by address: for crash reports and
// profiles of the guest.
type Symbols []symbol

// ReadSymbols reads the function symbols of the ELF executable r; none if it has none.
func ReadSymbols(r io.ReaderAt) Symbols {
	syms := Symbols{}
	ef, err := elf.NewFile(r)
	if err != nil {
		return syms
	}
	all, err := ef.Symbols()
	if err != nil {
		return syms
	}
	for _, s := range all {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC || s.Section != elf.SHN_UNDEF && s.Size > 0 {
			syms = append(syms, symbol{s.Value, s.Size, s.Name})
		}
	}
	sort.Slice(syms, func(i, j int) bool { return syms[i].addr < syms[j].addr })
	return syms
}

// Find names the function containing pc and pc's offset in it; "" if none does.
func (syms Symbols) Find(pc uint64) (name string, off uint64) {
	i := sort.Search(len(syms), func(i int) bool { return syms[i].addr > pc }) - 1
	for ; i >= 0; i-- {
		s := syms[i]
		if pc < s.addr+s.size || s.size == 0 && pc-s.addr < 1<<16 {
			return s.name, pc - s.addr
		}
		if s.size != 0 {
			break
		}
	}
	return "", 0
}

// Config is what the guest is told at boot.
type Config struct {
	CPUs      int
	Argv, Env []string
	Flags     uint64 // abi.Flag*
	TSCKHz    uint64
	WallNanos uint64
	Seed      [4]uint64
	// App, if set, is mapped into guest memory at AppAddr (see AppAddr) for tier 1 to load.
	App     *os.File
	AppSize uint64
	AppAddr uint64
}

// AppAddr is where an app file of size bytes goes in a guest of memSize bytes: at the top.
func AppAddr(memSize, size uint64) uint64 {
	return memSize - (size+hugePage-1)&^(hugePage-1)
}

// State is the initial CPU state shared by the vCPUs (each has its own CR3 and TSS: see
// CR3 and TSS).
type State struct {
	RIP          uint64
	CR0          uint64
	CR4, EFER    uint64
	SyscallEntry uint64
	STAR, FMASK  uint64
}

// Install writes the kernel, page tables, descriptor tables and boot info into g.
func (k *Kernel) Install(g *memory.Guest, c Config) (*State, error) {
	if g.Size() > maxMemory {
		return nil, fmt.Errorf("guest memory of %d MiB is above the %d MiB pith supports", g.Size()>>20, uint64(maxMemory)>>20)
	}
	if k.End+hugePage > g.Size() {
		return nil, fmt.Errorf("guest memory of %d MiB does not even hold the %d MiB kernel: use more (-m)", g.Size()>>20, k.End>>20)
	}
	for _, s := range k.segments {
		if err := g.MapFile(s.addr, k.file, s.off, s.filesz); err != nil {
			return nil, err
		}
		// The file's last page runs past the segment: zero that tail (.bss starts there).
		if end := s.addr + s.filesz; end%0x1000 != 0 {
			tail, err := g.Slice(end, 0x1000-end%0x1000)
			if err != nil {
				return nil, err
			}
			clear(tail)
		}
	}
	if c.CPUs < 1 || c.CPUs > abi.MaxCPUs {
		return nil, fmt.Errorf("%d vCPUs: pith runs 1 to %d", c.CPUs, abi.MaxCPUs)
	}
	if err := buildPageTables(g, c.CPUs); err != nil {
		return nil, err
	}
	if err := k.buildDescriptorTables(g, c.CPUs); err != nil {
		return nil, err
	}
	if c.App != nil {
		size := (c.AppSize + hugePage - 1) &^ (hugePage - 1)
		if k.End+size+8*hugePage > g.Size() || c.AppAddr != AppAddr(g.Size(), c.AppSize) {
			return nil, fmt.Errorf("guest memory of %d MiB cannot hold the kernel and a %d MiB app: use more (-m)", g.Size()>>20, c.AppSize>>20)
		}
		if err := g.MapFile(c.AppAddr, c.App, 0, c.AppSize); err != nil {
			return nil, err
		}
	}
	if err := k.writeBootInfo(g, c); err != nil {
		return nil, err
	}
	vdso, err := g.Slice(abi.VDSOAddr, abi.VDSOSize)
	if err != nil {
		return nil, err
	}
	copy(vdso, k.vdsoImage())
	return &State{
		RIP:          k.Entry,
		CR0:          cr0PE | cr0MP | cr0ET | cr0NE | cr0WP | cr0AM | cr0PG,
		CR4:          cr4PAE | cr4OSFXSR | cr4OSXMMEXCPT | cr4OSXSAVE | cr4FSGSBASE,
		EFER:         eferSCE | eferLME | eferLMA | eferNXE,
		SyscallEntry: k.vectors[abi.VectorTableSyscall],
		STAR:         uint64(abi.SelUserCode32-3)<<48 | uint64(abi.SelKernelCode)<<32,
		FMASK:        rflagsIF | rflagsDF | rflagsTF | rflagsAC,
	}, nil
}

// buildPageTables maps the first 2 MiB at their physical addresses, with 4 KiB pages so
// that page 0 stays absent, and all guest memory again at abi.PhysBase with 2 MiB pages.
// Each vCPU gets its own PML4 and first PDPT, PD and PT (the physmap is shared), whose only
// difference is where abi.PVMPageAddr and abi.PerCPUAddr point: at that vCPU's own pages.
func buildPageTables(g *memory.Guest, cpus int) error {
	const table = pteP | pteRW | pteUS
	gibs := (g.Size() + gib - 1) / gib
	put := func(addr, v uint64) error { return g.PutUint64(addr, v) }
	physPDPT := uint64(abi.SharedPDAddr)
	for i := uint64(0); i < gibs; i++ {
		pd := abi.SharedPDAddr + (i+1)*0x1000
		if err := put(physPDPT+8*i, pd|table); err != nil {
			return err
		}
		for j := uint64(0); j < 512 && i*gib+j*hugePage < g.Size(); j++ {
			if err := put(pd+8*j, (i*gib+j*hugePage)|table|ptePS); err != nil {
				return err
			}
		}
	}
	for c := 0; c < cpus; c++ {
		b := CPUBlock(c)
		pml4, pdpt, pd, pt := b+abi.PerCPUPML4, b+abi.PerCPUPDPT, b+abi.PerCPUPD, b+abi.PerCPUPT
		if err := put(pml4, pdpt|table); err != nil {
			return err
		}
		if err := put(pml4+8*(abi.PhysBase>>39&511), physPDPT|table); err != nil {
			return err
		}
		if err := put(pdpt, pd|table); err != nil {
			return err
		}
		if err := put(pd, pt|table); err != nil {
			return err
		}
		for j := uint64(1); j < 512; j++ {
			pa := j * 0x1000
			switch pa {
			case abi.PVMPageAddr:
				pa = b + abi.PerCPUPVM
			case abi.PerCPUAddr:
				pa = b + abi.PerCPUData
			}
			if err := put(pt+8*j, pa|table); err != nil {
				return err
			}
		}
	}
	return nil
}

func (k *Kernel) buildDescriptorTables(g *memory.Guest, cpus int) error {
	gdt := []uint64{
		0, 0,
		0x00af9b000000ffff, // 0x10 kernel code, 64-bit
		0x00cf93000000ffff, // 0x18 kernel data
		0x00cffb000000ffff, // 0x20 user code, 32-bit (STAR base for SYSRET)
		0x00cff3000000ffff, // 0x28 user data
		0x00affb000000ffff, // 0x30 user code, 64-bit
	}
	// 0x38: vCPU 0's 64-bit TSS descriptor, two slots (SDM Vol 3A 7.2.3). The other vCPUs'
	// TRs are set directly by the monitor and never reloaded.
	tss0 := TSS(0)
	gdt = append(gdt,
		uint64(tssSize-1)|(tss0&0xffffff)<<16|0x89<<40|(tss0>>24&0xff)<<56,
		tss0>>32)
	for i, d := range gdt {
		if err := g.PutUint64(abi.GDTAddr+uint64(8*i), d); err != nil {
			return err
		}
	}
	for v := uint64(0); v < 256; v++ {
		h := k.vectors[v]
		// 64-bit interrupt gate, DPL 0, kernel code selector (SDM Vol 3A 6.14.1).
		// Interrupts use IST1, a stack of their own: kvm-pvm delivers an interrupt that
		// arrives in user mode on the interrupted thread's stack otherwise, which may have
		// no room below its stack pointer.
		ist := uint64(2) // exceptions: IST2, the tier-0 stack (see below)
		if v >= abi.FirstInterruptVector {
			ist = 1
		}
		lo := h&0xffff | abi.SelKernelCode<<16 | ist<<32 | 0x8e<<40 | (h>>16&0xffff)<<48
		if err := g.PutUint64(abi.IDTAddr+16*v, lo); err != nil {
			return err
		}
		if err := g.PutUint64(abi.IDTAddr+16*v+8, h>>32); err != nil {
			return err
		}
	}
	// Each vCPU's TSS (RSP0: exceptions from user mode switch to its tier-0 stack) and CPU
	// block.
	for c := 0; c < cpus; c++ {
		top := k.vectors[abi.VectorTableStacks] + uint64(c+1)*abi.KStackSize
		tss, err := g.Slice(TSS(c), tssSize)
		if err != nil {
			return err
		}
		binary.LittleEndian.PutUint64(tss[4:], top)
		// IST2 is the tier-0 stack too: exceptions switch to it even when they come from
		// tier-0 code. With RSP0 alone, kvm-pvm turns a page fault on a thread's own stack
		// push into a triple fault (measured: a Go stack growing into an unbacked 2 MiB
		// block); with an IST it delivers it.
		binary.LittleEndian.PutUint64(tss[0x2c:], top)
		binary.LittleEndian.PutUint64(tss[0x24:], k.vectors[abi.VectorTableIntrStacks]+uint64(c+1)*abi.IntrStackSize) // IST1
		binary.LittleEndian.PutUint16(tss[0x66:], tssSize)                                                            // no I/O bitmap
		block := abi.CPU{ID: uint64(c), APICID: uint64(c), PVMGPA: CPUBlock(c) + abi.PerCPUPVM, KStackTop: top}
		out, err := g.Slice(CPUBlock(c)+abi.PerCPUData, uint64(binary.Size(block)))
		if err != nil {
			return err
		}
		if _, err := binary.Encode(out, binary.LittleEndian, &block); err != nil {
			return err
		}
	}
	return nil
}

func (k *Kernel) writeBootInfo(g *memory.Guest, c Config) error {
	var block []byte
	for _, a := range c.Argv {
		block = append(append(block, a...), 0)
	}
	for _, e := range c.Env {
		block = append(append(block, e...), 0)
	}
	if len(block) > abi.CmdlineMax {
		return fmt.Errorf("arguments and environment take %d bytes, more than the %d pith passes", len(block), abi.CmdlineMax)
	}
	dst, err := g.Slice(abi.CmdlineAddr, uint64(len(block)))
	if err != nil {
		return err
	}
	copy(dst, block)
	if c.TSCKHz == 0 {
		return errors.New("unknown TSC frequency")
	}
	window, windowAddr := g.WindowBytes()
	bi := abi.BootInfo{
		Magic:      abi.BootMagic,
		Version:    abi.Version,
		Flags:      c.Flags,
		MemSize:    g.Size(),
		KernelEnd:  k.End,
		TSCKHz:     c.TSCKHz,
		Seed:       c.Seed,
		CmdlineLen: uint64(len(block)),
		Argc:       uint64(len(c.Argv)),
		CPUs:       uint64(c.CPUs),
		WallNanos:  c.WallNanos,
		AppAddr:    c.AppAddr,
		AppSize:    c.AppSize,
		WindowAddr: windowAddr,
		WindowSize: uint64(len(window)),
		NsMult:     (1_000_000 << 32) / c.TSCKHz,
		TSCMult:    (c.TSCKHz << 32) / 1_000_000,

		Tier1SyscallSite: k.syscallSite,
	}
	out, err := g.Slice(abi.BootInfoAddr, uint64(binary.Size(bi)))
	if err != nil {
		return err
	}
	_, err = binary.Encode(out, binary.LittleEndian, &bi)
	return err
}
