package kernel

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
	"github.com/pithvm/pith/guest/x86"
)

const (
	pageSize    = 4096
	stackSize   = 8 << 20
	sysPithKick = abi.SysPithKick

	mapFixedNoReplace = 0x100000
)

// Image is an executable mapped into the app's address space, not yet started.
type Image struct {
	elf              *elf.File
	bias             uint64
	phdr, start, end uint64
	interp           string // the dynamic linker it names (PT_INTERP), loaded by Run
}

// Load maps the executable image (the app file, mapped into guest memory by the monitor)
// at its addresses.
func Load(image []byte) (*Image, error) {
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		return nil, fmt.Errorf("not an ELF executable: %v", err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return nil, errors.New("not an x86-64 executable")
	}
	im := &Image{elf: f}
	switch f.Type {
	case elf.ET_EXEC:
	case elf.ET_DYN:
		im.bias = abi.PIEBase
	default:
		return nil, fmt.Errorf("ELF type %v is not an executable", f.Type)
	}
	for _, prog := range f.Progs {
		switch prog.Type {
		case elf.PT_INTERP:
			if prog.Filesz == 0 || prog.Filesz > 4096 || prog.Off+prog.Filesz > uint64(len(image)) {
				return nil, errors.New("a malformed PT_INTERP")
			}
			im.interp = string(bytes.TrimRight(image[prog.Off:prog.Off+prog.Filesz], "\x00"))
		case elf.PT_PHDR:
			im.phdr = prog.Vaddr + im.bias
		case elf.PT_LOAD:
			if err := loadSegment(image, prog, im.bias); err != nil {
				return nil, err
			}
			if prog.Off == 0 && im.phdr == 0 {
				im.phdr = prog.Vaddr + im.bias + uint64(binary.Size(elf.Header64{}))
			}
			if s := (prog.Vaddr + im.bias) &^ (pageSize - 1); im.start == 0 || s < im.start {
				im.start = s
			}
			if e := prog.Vaddr + im.bias + prog.Memsz; e > im.end {
				im.end = e
			}
		}
	}
	return im, nil
}

// Prefault touches every page of the image, so that a VM booted ahead of its run pays
// the hypervisor's first touch (~7 us a page on kvm-pvm) before the run, not during it:
// code and constants by a read, data and .bss by a write of what is there (a read would
// map them read-only, and the app's first write would fault again).
func (im *Image) Prefault() {
	var sum byte
	for _, prog := range im.elf.Progs {
		if prog.Type != elf.PT_LOAD || prog.Memsz == 0 {
			continue
		}
		start := (prog.Vaddr + im.bias) &^ (pageSize - 1)
		if prog.Flags&elf.PF_W == 0 {
			for va := start; va < prog.Vaddr+im.bias+prog.Filesz; va += pageSize {
				sum += appBytes(va, 1)[0]
			}
			continue
		}
		for va := start; va < prog.Vaddr+im.bias+prog.Memsz; va += pageSize {
			atomic.AddUint32((*uint32)(appPtr(va)), 0) // a write the compiler keeps
		}
	}
	prefaultSink = sum
}

// prefaultSink keeps Prefault's reads from being optimised away.
var prefaultSink byte

// PrefaultKernel reads every page of this kernel's code and constants, for a VM booted
// ahead of its run: the run then finds in place the tier-1 code its app's system calls
// reach (~50 pages, ~0.35 ms of first touches in a warm hello) that the boot never ran.
// The kernel's first segment holds its ELF header, so the program headers are in memory.
func PrefaultKernel() {
	base := uint64(abi.PhysBase + abi.KernelBase)
	hdr := (*elf.Header64)(appPtr(base))
	if string(hdr.Ident[:4]) != elf.ELFMAG || hdr.Phoff+uint64(hdr.Phnum)*uint64(unsafe.Sizeof(elf.Prog64{})) > pageSize {
		return
	}
	progs := unsafe.Slice((*elf.Prog64)(appPtr(base+hdr.Phoff)), hdr.Phnum)
	var sum byte
	for _, prog := range progs {
		if elf.ProgType(prog.Type) != elf.PT_LOAD || elf.ProgFlag(prog.Flags)&elf.PF_W != 0 || prog.Vaddr < base {
			continue
		}
		for va := prog.Vaddr &^ (pageSize - 1); va < prog.Vaddr+prog.Filesz; va += pageSize {
			sum += *(*byte)(appPtr(va))
		}
	}
	prefaultSink += sum
}

// InheritedFD is a host file or pipe the app has open at a descriptor above 2 when it
// starts: the program that started it had it open there (abi.SpawnFD).
type InheritedFD struct {
	FD     int
	Kind   uint64 // abi.SpawnFile, SpawnPipeIn (the app reads it) or SpawnPipeOut
	Handle uint64 // the file service's: a file (its offset the host's), or a stream that does not block
	Flags  uint64
	Path   string // the guest's path of it
}

// Run runs the loaded image with argv and envp, and the inherited descriptors, until it
// exits; it does not return.
func (im *Image) Run(argv, envp []string, cwd, exe string, inherited []InheritedFD) error {
	f, bias, phdr, end := im.elf, im.bias, im.phdr, im.end
	p := &Process{tasks: map[int32]*Task{}, exe: argv[0], unsupported: map[uint64]bool{}, cwd: cwd,
		umask: uint32(bootInfo().Umask & 0o777),
		fds:   map[int]*file{0: {kind: kindStdin}, 1: {kind: kindStdout}, 2: {kind: kindStderr}}}
	for _, in := range inherited {
		switch in.Kind {
		case abi.SpawnFile:
			p.fds[in.FD] = &file{kind: kindHost, handle: in.Handle, flags: in.Flags, path: in.Path}
		case abi.SpawnPipeIn: // a pipe of tier 1's, filled from the host pipe
			pp := newPipe()
			p.fds[in.FD] = &file{kind: kindPipe, pipe: pp, readEnd: true}
			go pumpOut(pp)(in.Handle)
		case abi.SpawnPipeOut: // a pipe of tier 1's, drained into the host pipe
			pp := newPipe()
			p.fds[in.FD] = &file{kind: kindPipe, pipe: pp, flags: syscall.O_WRONLY}
			go pumpIn(pp)(in.Handle)
		}
	}
	if exe == "" {
		exe = argv[0]
	}
	if abs, ok := p.absPath(atFDCWD, exe); ok == 0 {
		p.exe = abs
	}
	p.name = path.Base(p.exe)
	if c, e := canonical(p.exe); e == 0 { // /proc/self/exe names the file, links followed
		p.exe = c
	}
	p.brkStart = (end + pageSize - 1) &^ (pageSize - 1)
	p.brk = p.brkStart
	p.argv, p.envp = argv, envp
	p.mappings = segmentMappings(f, bias, p.exe)

	t, err := newTask(p)
	if err != nil {
		return err
	}
	t.initVectorState()
	entry, interpBase := f.Entry+bias, uint64(0)
	if im.interp != "" {
		var interp *elf.File
		if interp, interpBase, entry, err = loadInterpreter(im.interp); err != nil {
			return fmt.Errorf("its dynamic linker %s: %v", im.interp, err)
		}
		p.mappings = append(p.mappings, segmentMappings(interp, interpBase, im.interp)...)
		if Trace {
			fmt.Fprintf(os.Stderr, "pith: the dynamic linker %s is at %#x\n", im.interp, interpBase)
		}
	}
	sp, err := initialStack(argv, envp, []auxv{
		{linux.AT_PHDR, phdr}, {linux.AT_PHENT, uint64(binary.Size(elf.Prog64{}))}, {linux.AT_PHNUM, uint64(len(f.Progs))},
		{linux.AT_PAGESZ, pageSize}, {linux.AT_BASE, interpBase}, {linux.AT_FLAGS, 0}, {linux.AT_ENTRY, f.Entry + bias},
		{linux.AT_UID, abi.AppUID}, {linux.AT_EUID, abi.AppUID}, {linux.AT_GID, abi.AppGID}, {linux.AT_EGID, abi.AppGID}, {linux.AT_SECURE, 0},
		{linux.AT_CLKTCK, 100}, {linux.AT_HWCAP, hwcap()}, {linux.AT_SYSINFO_EHDR, abi.VDSOAddr},
	})
	if err != nil {
		return err
	}
	t.ctx.Regs.RIP = entry
	t.ctx.Regs.RSP = sp
	t.ctx.Regs.RFLAGS = 0x202
	// Signals sent to the guest (pith forwards the user's Ctrl-C, SIGTERM...) are the app's:
	// ask for them before the app runs, or an early one would end tier 1 instead.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGALRM)
	t.start(&p.wg, nil)
	for s := range sigs {
		sig := uint64(s.(syscall.Signal))
		if h := p.execHandle.Load(); h != 0 {
			fileRequest(&abi.FileRequest{Op: abi.FileKillChild, Handle: h, Flags: sig})
			continue
		}
		p.post(t, sig)
	}
	select {} // the process ends through exit_group or its last thread's exit
}

// loadSegment maps one PT_LOAD segment at its address: the file's own pages for its file
// part (tier 0 maps them from the copy the monitor put in guest memory; a write copies the
// page for this guest only), anonymous zeroed memory for the rest (.bss).
func loadSegment(image []byte, prog *elf.Prog, bias uint64) error {
	if prog.Filesz > prog.Memsz || prog.Off+prog.Filesz > uint64(len(image)) || prog.Off+prog.Filesz < prog.Off ||
		prog.Vaddr%pageSize != prog.Off%pageSize {
		return fmt.Errorf("segment at %#x is misaligned or reaches past the end of the file", prog.Vaddr)
	}
	va := prog.Vaddr + bias
	start := va &^ (pageSize - 1)
	fileEnd := va + prog.Filesz
	end := (va + prog.Memsz + pageSize - 1) &^ (pageSize - 1)
	mapped := start
	if prog.Filesz > 0 {
		n := (fileEnd+pageSize-1)&^(pageSize-1) - start
		if _, _, e := syscall.RawSyscall(abi.SysPithMapApp, uintptr(start), uintptr(n), uintptr(prog.Off&^(pageSize-1))); e != 0 {
			return fmt.Errorf("mapping segment at %#x+%#x: %v", va, prog.Filesz, e)
		}
		mapped = start + n
		if prog.Memsz > prog.Filesz {
			clear(appBytes(fileEnd, mapped-fileEnd)) // file bytes past the segment: .bss
		}
	}
	if end > mapped {
		if _, err := mmapFixed(mapped, end-mapped); err != nil {
			return fmt.Errorf("mapping segment at %#x+%#x: %v", va, prog.Memsz, err)
		}
	}
	return nil
}

// loadInterpreter maps the dynamic linker at path, read from the guest's files, where
// mmap would put a mapping of its size, as Linux does; it returns the linker's base
// (AT_BASE) and entry point, where the app starts.
func loadInterpreter(path string) (f *elf.File, base, entry uint64, err error) {
	image, err := readGuestFile(path, 64<<20)
	if err != nil {
		return nil, 0, 0, err
	}
	if f, err = elf.NewFile(bytes.NewReader(image)); err != nil {
		return nil, 0, 0, fmt.Errorf("not an ELF file: %v", err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || f.Type != elf.ET_DYN {
		return nil, 0, 0, errors.New("not an x86-64 shared object")
	}
	lo, hi := ^uint64(0), uint64(0)
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_LOAD {
			continue
		}
		if prog.Filesz > prog.Memsz || prog.Off+prog.Filesz > uint64(len(image)) || prog.Off+prog.Filesz < prog.Off ||
			prog.Vaddr+prog.Memsz < prog.Vaddr || prog.Vaddr+prog.Memsz > 1<<40 {
			return nil, 0, 0, fmt.Errorf("segment at %#x is malformed", prog.Vaddr)
		}
		lo, hi = min(lo, prog.Vaddr&^(pageSize-1)), max(hi, pageUp(prog.Vaddr+prog.Memsz))
	}
	if lo >= hi {
		return nil, 0, 0, errors.New("no loadable segment")
	}
	r, _, e := syscall.Syscall6(syscall.SYS_MMAP, 0, uintptr(hi-lo), syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS, ^uintptr(0), 0)
	if e != 0 {
		return nil, 0, 0, fmt.Errorf("mapping %d bytes: %v", hi-lo, e)
	}
	bias := uint64(r) - lo
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_LOAD && prog.Filesz > 0 {
			copy(appBytes(prog.Vaddr+bias, prog.Filesz), image[prog.Off:prog.Off+prog.Filesz])
		}
	}
	// Each segment's protection, in order: where two share a page the later wins, as
	// Linux's mappings of them would.
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_LOAD {
			continue
		}
		start := (prog.Vaddr + bias) &^ (pageSize - 1)
		end := pageUp(prog.Vaddr + bias + prog.Memsz)
		if _, _, e := syscall.Syscall(syscall.SYS_MPROTECT, uintptr(start), uintptr(end-start), uintptr(segmentProt(prog))); e != 0 {
			return nil, 0, 0, fmt.Errorf("protecting segment at %#x: %v", prog.Vaddr, e)
		}
	}
	return f, bias, f.Entry + bias, nil
}

// segmentMappings are the mappings of f's loadable segments at bias, for
// /proc/self/maps.
func segmentMappings(f *elf.File, bias uint64, name string) []mapping {
	var ms []mapping
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_LOAD {
			continue
		}
		ms = append(ms, mapping{start: (prog.Vaddr + bias) &^ (pageSize - 1), end: pageUp(prog.Vaddr + bias + prog.Memsz),
			off: prog.Off &^ (pageSize - 1), prot: segmentProt(prog), name: name})
	}
	return ms
}

// segmentProt is the mmap protection of a loadable segment's flags.
func segmentProt(prog *elf.Prog) uint64 {
	prot := uint64(0)
	if prog.Flags&elf.PF_R != 0 {
		prot |= syscall.PROT_READ
	}
	if prog.Flags&elf.PF_W != 0 {
		prot |= syscall.PROT_WRITE
	}
	if prog.Flags&elf.PF_X != 0 {
		prot |= syscall.PROT_EXEC
	}
	return prot
}

// readGuestFile reads the whole of the guest's file at path, of at most limit bytes.
func readGuestFile(path string, limit int64) ([]byte, error) {
	r := abi.FileRequest{Op: abi.FileOpen, Flags: syscall.O_RDONLY}
	keep := hostString(&r.Path, &r.PathLen, path)
	h := fileRequest(&r)
	runtime.KeepAlive(keep)
	if h < 0 {
		return nil, syscall.Errno(-h)
	}
	defer fileRequest(&abi.FileRequest{Op: abi.FileClose, Handle: uint64(h)})
	var st syscall.Stat_t
	if e := hostStat(uint64(h), "", &st, false); e != 0 {
		return nil, syscall.Errno(-e)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, errors.New("not a regular file")
	}
	if st.Size > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	b := hostBuffer(int(st.Size))
	for done := 0; done < len(b); {
		rr := abi.FileRequest{Op: abi.FileRead, Handle: uint64(h), Offset: uint64(done),
			Buf: uint64(uintptr(unsafe.Pointer(&b[done]))), Len: uint64(len(b) - done)}
		n := fileRequest(&rr)
		if n < 0 {
			return nil, syscall.Errno(-n)
		}
		if n == 0 {
			return nil, errors.New("shorter than its size")
		}
		done += int(n)
	}
	return b, nil
}

func mmapFixed(addr, length uint64) (uint64, error) {
	r, _, e := syscall.Syscall6(syscall.SYS_MMAP, uintptr(addr), uintptr(length),
		syscall.PROT_READ|syscall.PROT_WRITE|syscall.PROT_EXEC,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|mapFixedNoReplace, ^uintptr(0), 0)
	if e != 0 {
		return 0, e
	}
	return uint64(r), nil
}

// auxv is one auxiliary vector entry.
type auxv struct{ key, value uint64 }

// initialStack maps the app's stack and lays out argc, argv, envp, auxv and the strings
// as Linux does for a new process; it returns the stack pointer.
func initialStack(argv, envp []string, aux []auxv) (uint64, error) {
	if _, err := mmapFixed(abi.AppStackTop-stackSize, stackSize); err != nil {
		return 0, fmt.Errorf("mapping the stack: %v", err)
	}
	sp := uint64(abi.AppStackTop)
	push := func(b []byte) uint64 {
		sp -= uint64(len(b))
		copy(appBytes(sp, uint64(len(b))), b)
		return sp
	}
	str := func(s string) uint64 { return push(append([]byte(s), 0)) }
	var random [16]byte
	syscall.RawSyscall(318 /* getrandom */, uintptr(unsafe.Pointer(&random[0])), 16, 0)
	randAddr := push(random[:])
	platform := str("x86_64")
	execfn := str(argv[0])
	argAddrs := make([]uint64, len(argv))
	for i, a := range argv {
		argAddrs[i] = str(a)
	}
	envAddrs := make([]uint64, len(envp))
	for i, e := range envp {
		envAddrs[i] = str(e)
	}
	aux = append(aux, auxv{linux.AT_RANDOM, randAddr}, auxv{linux.AT_PLATFORM, platform}, auxv{linux.AT_EXECFN, execfn}, auxv{linux.AT_NULL, 0})
	words := 1 + len(argv) + 1 + len(envp) + 1 + 2*len(aux)
	sp = (sp - uint64(words)*8) &^ 15
	w := appBytes(sp, uint64(words)*8)
	i := 0
	put := func(v uint64) { binary.LittleEndian.PutUint64(w[8*i:], v); i++ }
	put(uint64(len(argv)))
	for _, a := range argAddrs {
		put(a)
	}
	put(0)
	for _, e := range envAddrs {
		put(e)
	}
	put(0)
	for _, a := range aux {
		put(a.key)
		put(a.value)
	}
	return sp, nil
}

// hwcap is AT_HWCAP on x86: CPUID leaf 1's EDX.
func hwcap() uint64 {
	_, _, _, edx := x86.CPUID(1, 0)
	return uint64(edx)
}
