// Package abi is the contract between the pith monitor (host) and the pith kernel (guest):
// the guest-physical memory layout, the boot-info block and the I/O ports the guest uses to
// call the monitor. It is append-only and imports nothing, so tier-0 code can use it.
package abi

// Version is bumped whenever a field or port below changes meaning.
const Version = 1

// Guest-physical layout. The monitor builds everything below KernelBase before the first
// guest instruction runs (guest code runs emulated until it switches to native mode, so the
// guest does as little set-up as possible). Page 0 is never mapped: a nil access faults.
//
// Virtual layout: the first 2 MiB are mapped at their physical addresses (the boot
// structures below are used there); all guest memory is mapped again at PhysBase, where
// the kernel is linked and runs; everything else belongs to tier 1 and the app, which can
// therefore be loaded where static executables expect to be (0x400000).
//
// Each vCPU has its own top-level page tables, identical except in the first 2 MiB, where
// two fixed addresses map that vCPU's own pages: PVMPageAddr (kvm-pvm's shared page) and
// PerCPUAddr (the CPU block). So entry code finds its per-CPU state at a constant address,
// with no SWAPGS (a 2.5 us trap on kvm-pvm) and no free register needed.
const (
	GDTAddr      = 0x1000 // global descriptor table, selectors below
	IDTAddr      = 0x2000 // 256 16-byte gates, shared by all vCPUs
	PVMPageAddr  = 0x4000 // (virtual) this vCPU's kvm-pvm shared page (vif byte)
	PerCPUAddr   = 0x5000 // (virtual) this vCPU's CPU block
	VDSOAddr     = 0x6000 // the vDSO image (AT_SYSINFO_EHDR): clock reads without a trap
	VDSOSize     = 0x1000
	BootInfoAddr = 0x8000   // BootInfo; the command line is at CmdlineAddr
	CmdlineAddr  = 0x100000 // argv and envp strings (CmdlineMax bytes at most; Linux's limit is larger)
	CmdlineMax   = 0x100000
	ConsoleAddr  = 0x10000 // console ring, ConsoleSize bytes
	ConsoleSize  = 0x10000
	SharedPDAddr = 0x20000 // the physmap's PDPT, then one page directory per GiB of memory
	PerCPUBase   = 0x40000 // per-vCPU blocks, PerCPUStride each, in vCPU order
	PerCPUStride = 0x8000
	PageTableEnd = PerCPUBase + MaxCPUs*PerCPUStride
	KernelBase   = 0x400000       // the kernel's physical load address
	PhysBase     = 0x7e0000000000 // guest memory mapped here; the kernel is linked at PhysBase+KernelBase
	PhysSpan     = 1 << 39        // the virtual span reserved for it (one PML4 entry)
	LowMapEnd    = 2 << 20        // the identity-mapped first 2 MiB
)

// User space: tier 1 and its app, laid out as Linux lays out a process.
const (
	UserVAEnd     = 0x7ffffffff000 // the end of user space (Linux's TASK_SIZE, less a guard page)
	Tier1StackTop = 0x7ffffff00000 // tier 1's initial stack, made by tier 0, as Linux places one
	AppStackTop   = 0x7ffe00000000 // the app's initial stack, below tier 1's
	MmapTop       = 0x7f0000000000 // mmap(NULL) hands out addresses downwards from here
	PIEBase       = 0x555555554000 // where a static-PIE executable goes, as Linux puts one without ASLR

	MaxCPUs = 16
	// Pages within a vCPU's block.
	PerCPUPVM  = 0x0000 // kvm-pvm shared page
	PerCPUData = 0x1000 // CPU block
	PerCPUTSS  = 0x2000 // task-state segment (RSP0)
	PerCPUPML4 = 0x3000 // this vCPU's PML4, PDPT for the first 512 GiB, first PD and PT
	PerCPUPDPT = 0x4000
	PerCPUPD   = 0x5000
	PerCPUPT   = 0x6000

	// PML4Addr is vCPU 0's PML4: tier 0 walks and edits page tables through it and copies
	// each change to the other vCPUs' replicas of the PML4, first PDPT and first PD.
	PML4Addr = PerCPUBase + PerCPUPML4

	KStackSize    = 64 << 10 // each vCPU's tier-0 stack
	IntrStackSize = 4 << 10  // each vCPU's interrupt stack (TSS.IST1)
)

// CPU is the start of each vCPU's CPU block, written by the monitor, then its idle record.
type CPU struct {
	ID        uint64 // vCPU index, 0 is the boot vCPU
	APICID    uint64 // x2APIC ID, for inter-processor interrupts
	PVMGPA    uint64 // guest-physical address of this vCPU's kvm-pvm shared page
	KStackTop uint64 // top of this vCPU's tier-0 stack
	// Written by tier 0 around each halt, read by the monitor's watchdog, which reports a
	// guest whose vCPUs all halted and whose timer interrupt never came (a host that
	// drops TSC-deadline writes) instead of leaving it hung.
	IdleSince uint64 // TSC when the vCPU halted in its idle loop; 0 while it runs
	IdleUntil uint64 // the TSC deadline its timer was armed for as it halted; 0 if none
	// FastCtx is the AppContext of the thread this vCPU runs, once that thread has run
	// app code (0: none), written by tier 0 as it switches threads. A rewritten
	// system-call site reads it at PerCPUAddr+PerCPUFastCtx to find its thread's context
	// without a trap or a free register.
	FastCtx uint64
}

// PerCPUFastCtx is CPU.FastCtx's offset in the CPU block.
const PerCPUFastCtx = 48

// Segment selectors of the GDT the monitor builds. User selectors are what SYSCALL/SYSRET
// and kvm-pvm expect: user code 0x33, user data 0x2b.
const (
	SelKernelCode = 0x10
	SelKernelData = 0x18
	SelUserCode32 = 0x23
	SelUserData   = 0x2b
	SelUserCode   = 0x33
	SelTSS        = 0x38 // vCPU 0's TSS; every vCPU's TR is loaded by the monitor directly
)

// Interrupt vectors tier 0 uses (exceptions are 0-31).
const (
	VectorTimer    = 0x20
	VectorWakeup   = 0xf1 // inter-processor interrupt: work for an idle or busy vCPU
	VectorSpurious = 0xff
)

// Boot flags in BootInfo.Flags.
const (
	FlagPVM     = 1 << iota // the host is kvm-pvm: switch to native execution first thing
	FlagTiming              // report reaching tier 1's main to the monitor (PortMainReached)
	FlagTrace               // every app system call goes to tier 1 (pith run --trace prints them)
	FlagPreload             // a warm VM: load and prefault the app (at AppAddr) before asking for the run
	FlagForked              // guest memory is a copy of another guest's at its fork: resume, do not boot (ForkThread)
)

// ExitSignaled+N, written to PortExit (and passed to exit_group by tier 1), says the app
// died of signal N. Linux keeps the low 8 bits of an exit status, so no exit says it.
const ExitSignaled = 0x100

// SignalsNotEnding has bit N-1 set for each signal N whose default action does not end a
// process: SIGCHLD, SIGCONT, SIGURG and SIGWINCH, ignored, and SIGSTOP, SIGTSTP, SIGTTIN
// and SIGTTOU, which stop it: pith has no job control, so a stop is as if continued at
// once. No ExitSignaled carries one of them.
const SignalsNotEnding = 1<<(17-1) | 1<<(18-1) | 1<<(23-1) | 1<<(28-1) |
	1<<(19-1) | 1<<(20-1) | 1<<(21-1) | 1<<(22-1)

// Ports the guest writes (OUT) to call the monitor. Each is an exit costing tens of
// microseconds on kvm-pvm, so none is used per write or per line.
const (
	PortSerial       = 0x3f8 // 16550 data register: early boot and crash text
	PortConsoleFlush = 0x500 // drain the console ring (BootInfo.ConsoleHead/Tail)
	PortExit         = 0x501 // 32-bit value: the guest's exit status, or ExitSignaled+N
	PortCrash        = 0x502 // tier 0 filled BootInfo.Crash; the value is a CrashKind
	PortIdle         = 0x503 // nothing runnable and no timer armed: the guest can never wake
	PortRelease      = 0x504 // return guest-physical pages to the host (BootInfo.Release*)
	PortMainReached  = 0x505 // tier 1 reached main (only with FlagTiming)
	PortFile         = 0x506 // serve the FileRequest at BootInfo.FileRequest
	PortNetKick      = 0x507 // tier 1 put frames in the NIC's transmit ring while the monitor waited
	PortFork         = 0x508 // every other vCPU is parked: copy the guest into a new one (the FileFork request at BootInfo.FileRequest)
)

// CrashKind says why tier 0 stopped the guest.
type CrashKind uint32

const (
	CrashException  CrashKind = 1 // an exception tier 0 cannot handle
	CrashTier0Fault CrashKind = 2 // an exception inside tier 0 itself
	CrashOutOfMem   CrashKind = 3 // tier 0 could not back memory it had promised
	CrashBadState   CrashKind = 4 // tier 0 found its own state inconsistent
)

// Private system calls tier 0 serves to tier 1, above Linux's numbers.
const (
	SysPithStats        = 0x7000 // copy Stats to the buffer in the first argument
	SysPithMainReached  = 0x7001 // tier 1 reached main (an exit to the monitor with FlagTiming)
	SysPithFault        = 0x7002 // make tier 0 fault on purpose: tests the crash report path
	SysPithRunApp       = 0x7003 // run app code on this thread until it traps (AppContext)
	SysPithKick         = 0x7004 // make thread (tid) leave RUN_APP at its next chance
	SysPithMapApp       = 0x7005 // map (va, length) to the app file's pages from offset off
	SysPithFile         = 0x7006 // a FileRequest to the monitor's file service
	SysPithUnmapToTier1 = 0x7007 // first argument 1: the app's munmap goes to tier 1 (shared file mappings to write back); 0: tier 0 serves it
	SysPithReadyFD      = 0x7008 // a new readiness descriptor: epoll reports the events tier 1 sets on it (a socket's)
	SysPithSetReady     = 0x7009 // (fd, events, or): set fd's ready events to events, or add them if or is 1
	SysPithNetKick      = 0x700a // tell the monitor the NIC's transmit ring has frames (PortNetKick)
	SysPithFork         = 0x700b // clone the guest (a FileFork request): the child handle in the parent, 0 in the copy
	SysPithSetPID       = 0x700c // (pid, ppid): what getpid and getppid answer from now on (a fork's child)
	SysPithMapWindow    = 0x700d // map (va, length), just mapped anonymous, to the file window's frames from guest-physical pa
)

// AppContext is the argument of SysPithRunApp, in tier-1 memory. Tier 0 loads Regs, FSBase
// and the vector state at XSave, runs the app on the calling thread, and when the app makes
// a system call, takes an exception tier 0 does not resolve itself, or is kicked, writes
// its state back and returns to tier 1 with Reason set.
type AppContext struct {
	Regs   Regs
	FSBase uint64
	XSave  uint64 // a 4 KiB, 64-byte aligned XSAVE area holding the app's vector state
	Reason uint64 // out: AppSyscall, AppFastCall, AppException or AppKicked
	CR2    uint64 // out: the faulting address of a page fault

	// Switching without a trap (docs/architecture.md, "Fast calls"): while the app runs,
	// Tier1* say where tier 1 resumes (after the SYSCALL of its RUN_APP: RIP, RSP, RBP,
	// R14 and FS base; Go's ABI keeps nothing else across a call), so that a rewritten
	// system-call site of the app's jumps there in user mode (BootInfo.AppExit), and
	// Active is 1. Tier 0 writes them at RUN_APP; tier 1's own RUN_APP site does when it
	// enters the app in user mode, which it does when Fast is 1: the app is at a
	// rewritten site's return, where only its general registers and FS base are live.
	// Kicked is SysPithKick's flag for that entry, which takes no trap to see it.
	Tier1RIP, Tier1RSP, Tier1RBP, Tier1R14, Tier1FS uint64
	Active, Kicked, Fast                            uint64
}

// ReadyTable is tier 0's record of its readiness descriptors' events (SysPithReadyFD),
// indexed by descriptor, which tier 1 writes directly, with atomic operations, so that a
// socket's events change without a call into tier 0 (BootInfo.ReadyTable):
//   - Levels: the ready events. Tier 1 lowers them with a store (a read took the data)
//     and raises them with an OR; tier 0 changes them only by compare-and-swap.
//   - Edges: events tier 1 raised, for the edge-triggered watches; tier 1 ORs them in,
//     then sets Pending, and tier 0 takes them (Pending first) when it collects.
//   - Waiting: not 0 while a thread may be blocked in an epoll instance that watches
//     the descriptor. Tier 1 reads it after raising and calls SysPithSetReady (mode
//     ReadyWake) to wake it only then; tier 0 sets it before its last look for events
//     ahead of blocking, so one of the two always sees the other.
type ReadyTable struct {
	Levels  [MaxReadyFDs]uint32
	Edges   [MaxReadyFDs]uint32
	Waiting [MaxReadyFDs]uint32
	Pending uint32
}

// MaxReadyFDs bounds tier 0's descriptors.
const MaxReadyFDs = 1024

// SysPithSetReady's third argument.
const (
	ReadySet  = 0 // the events are the descriptor's
	ReadyOr   = 1 // add them
	ReadyWake = 2 // tier 1 raised them in the ReadyTable: wake epoll
)

// Why SysPithRunApp returned.
const (
	AppSyscall   = 1 // Regs.RAX holds the system call number, RIP is past the SYSCALL
	AppException = 2 // Regs.Vector and ErrorCode say which; CR2 for a page fault
	AppKicked    = 3 // SysPithKick, or a signal for the tier-1 thread
	AppFastCall  = 4 // as AppSyscall, from a rewritten site without a trap: the vector state was not saved
)

// ConsoleFD values in a console record.
const (
	ConsoleStdout = 1
	ConsoleStderr = 2
)

// Regs is the register file tier 0 reports on a crash (mirrors the order tier 0 saves them).
type Regs struct {
	R15, R14, R13, R12, R11, R10, R9, R8 uint64
	RDI, RSI, RBP, RBX, RDX, RCX, RAX    uint64
	Vector, ErrorCode                    uint64
	RIP, CS, RFLAGS, RSP, SS             uint64
}

// Crash is filled by tier 0 before it writes PortCrash.
type Crash struct {
	Regs   Regs
	CR2    uint64 // faulting address for a page fault
	Tier0  uint64 // 1 if the fault was inside tier 0
	Info   uint64 // kind-specific detail
	CPU    uint64 // vCPU that crashed
	FSBase uint64 // the thread's FS base (its TLS)
}

// Stats are counters tier 0 and the monitor keep in the boot-info page so that the guest can
// report them and the monitor can print them.
type Stats struct {
	Syscalls    uint64 // SYSCALL traps into tier 0
	AppSyscalls uint64 // ... of them, made by app code (a fast call from a rewritten site takes no trap and is not counted)
	Exceptions  uint64 // exceptions taken by tier 0, demand-paging faults excluded
	PageFaults  uint64 // page faults that backed tier-1 memory on first access
	Interrupts  uint64 // interrupts delivered to tier 0
	Switches    uint64 // thread switches
	CPUsOnline  uint64 // vCPUs that have entered tier 0
	IPIsSent    uint64 // wake-up interrupts sent to other vCPUs
	Wakeups     uint64 // wake-up interrupts received
	Exits       uint64 // exits to the monitor (written by the monitor before each resume)
	Frames      uint64 // guest-physical 4 KiB frames in use by tier 1 now
	FramesPeak  uint64 // ... and at most so far
	MainTSC     uint64 // TSC when tier 1 reported reaching main (0 until then)
	StartTSC    uint64 // TSC when the guest's first instruction ran (monitor's estimate)
}

// BootInfo is at BootInfoAddr when the guest starts. The monitor fills the In fields;
// tier 0 and the monitor share the rest.
type BootInfo struct {
	// In: written by the monitor before boot.
	Magic      uint64 // BootMagic
	Version    uint64
	Flags      uint64
	MemSize    uint64 // bytes of guest-physical memory, from 0
	KernelEnd  uint64 // first byte after the kernel image (page aligned)
	TSCKHz     uint64 // TSC frequency
	Seed       [4]uint64
	CmdlineLen uint64 // the command-line block: Argc argument strings, then the environment's, each NUL-terminated
	Argc       uint64
	CPUs       uint64
	WallNanos  uint64 // host CLOCK_REALTIME at StartTSC, for CLOCK_REALTIME in the guest
	NsMult     uint64 // nanoseconds = (tsc * NsMult) >> 32
	TSCMult    uint64 // tsc = (nanoseconds * TSCMult) >> 32

	// Console ring: tier 0 appends records at ConsoleTail, the monitor consumes from
	// ConsoleHead. Both are free-running byte counters (index = counter % ConsoleSize).
	ConsoleHead uint64
	ConsoleTail uint64

	// Release: guest-physical range tier 0 asks the monitor to drop (PortRelease).
	ReleaseAddr uint64
	ReleaseLen  uint64

	// App: the app's executable file, mapped by the monitor into guest memory at AppAddr
	// (AppSize bytes, page aligned); tier 0 keeps its frames out of the allocator.
	AppAddr uint64
	AppSize uint64

	// File window: guest-physical addresses above guest memory where the monitor maps
	// files privately (FileMapWindow), for tier 0 to map into the app's address space
	// (SysPithMapWindow): shared libraries read from the host's page cache. Size 0: none.
	WindowAddr uint64
	WindowSize uint64

	FileRequest uint64 // virtual address of the FileRequest for PortFile

	// HostSignals: signals the host sent pith (Ctrl-C...), one bit each (1 << (sig-1)),
	// set by the monitor, taken by tier 0, which posts them to tier 1.
	HostSignals uint64

	OutOfMemory uint64 // set by tier 0 when an allocation was refused for lack of memory
	Stats       Stats
	Crash       Crash

	// The NIC (netring.go): NetReadyFD is the readiness descriptor (+1; 0: no NIC) tier 1's
	// NIC thread waits on, written by the monitor when tier 1 attaches the NIC. NetRx is
	// set by the monitor when it put frames in the receive ring while that thread slept;
	// tier 0 then makes the descriptor readable.
	NetReadyFD uint64
	NetRx      uint64

	// StreamsGone has bit 1<<fd set by the monitor once the reader of pith's stdout (1) or
	// stderr (2) has gone: tier 1 answers the app's writes there SIGPIPE and EPIPE, as
	// Linux does, though the output itself leaves through the console ring later.
	StreamsGone uint64

	// Hostname is the guest's name as uname reports it (--hostname), NUL-padded; all
	// zero: "pith".
	Hostname [64]byte

	// Host notifications (FileNotify): HostReadyFD is the readiness descriptor (+1; 0:
	// none) tier 1 waits on, written by the monitor at FileNotifyAttach. HostReady is set
	// by the monitor when something the guest asked about happened; tier 0 then makes the
	// descriptor readable. HostWatches counts what the monitor still watches for the
	// guest: while it is not 0, a guest with every thread blocked may yet be woken.
	HostReadyFD uint64
	HostReady   uint64
	HostWatches uint64

	// Umask is the app's file mode creation mask at start: pith's own (umask(2)).
	Umask uint64

	// Tier1SyscallSite is where tier 1's own Go runtime makes its system calls (the
	// MOVQ BX, DI; SYSCALL of abi.FastCallPatterns[0] in the kernel), found by the
	// monitor in the kernel's symbols; 0: not found. Tier 0 rewrites it at boot so that
	// tier 1 enters the app without a trap (AppContext.Fast).
	Tier1SyscallSite uint64
	// AppExit is written by tier 0 at boot: the code an app's rewritten system-call site
	// jumps to, with RCX holding its AppContext (PerCPUFastCtx), to hand the call to tier
	// 1 without a trap; 0: tier 0 cannot switch without traps (tier 1 then keeps SYSCALL).
	AppExit uint64
	// ReadyTable is written by tier 0 at boot: the address of its ReadyTable.
	ReadyTable uint64
}

// BootMagic marks a valid BootInfo ("pithboot").
const BootMagic = 0x746f6f6268746970

// Console record header: one byte fd, three bytes length (little endian), then the bytes.
const ConsoleRecordHeader = 4

// Tier0LockSymbol is tier 0's lock, a uint32: 0 when free, else its owner's vCPU number
// + 1.
const Tier0LockSymbol = "github.com/pithvm/pith/guest/tier0.bigLock"

// Tier 0's thread records (tier0.threads, the first Tier0LiveLimitSymbol of them in
// use), which the monitor reads to say what each thread of a guest that stopped
// answering waits for. guest/tier0's TestThreadLayout holds these to the struct.
const (
	Tier0ThreadsSymbol   = "github.com/pithvm/pith/guest/tier0.threads"
	Tier0LiveLimitSymbol = "github.com/pithvm/pith/guest/tier0.liveLimit" // int32
	Tier0ThreadSize      = 544
	Tier0ThreadState     = 192 // uint32: 0 free, 1 runnable, 2 blocked
	Tier0ThreadWait      = 196 // uint32: 0 none, 1 futex, 2 sleep, 3 epoll
	Tier0ThreadTID       = 200 // int32
	Tier0ThreadDeadline  = 208 // uint64 TSC, 0: none
	Tier0ThreadFutex     = 216 // uint64: the futex word's address
	Tier0ThreadApp       = 256 // uint64: non-zero while it runs app code
)

// The kernel ELF exports the symbol VectorTableSymbol: the 8-byte handler address of each
// of the 256 vectors, then the SYSCALL entry point (for LSTAR), the base of the tier-0
// stacks (MaxCPUs of KStackSize, for TSS.RSP0), __vdso_clock_gettime and the base of the
// interrupt stacks (MaxCPUs of IntrStackSize, for TSS.IST1). The monitor builds the IDT,
// LSTAR, the TSSs, the CPU blocks and the vDSO from it.
const (
	VectorTableSymbol     = "github.com/pithvm/pith/guest/tier0.vectorTable"
	VectorTableVectors    = 256
	VectorTableSyscall    = VectorTableVectors
	VectorTableStacks     = VectorTableVectors + 1
	VectorTableClock      = VectorTableVectors + 2 // __vdso_clock_gettime
	VectorTableIntrStacks = VectorTableVectors + 3
	VectorTableLen        = VectorTableVectors + 4
	FirstInterruptVector  = 32 // vectors below are exceptions
)

// FileRequest asks the monitor's file service for one operation on a host file. Paths
// and buffers are guest virtual addresses (tier 0 has made sure they are mapped); the
// monitor checks every one of them. Handles are the monitor's.
type FileRequest struct {
	Op      uint64
	Handle  uint64
	Offset  uint64
	Buf     uint64
	Len     uint64
	Path    uint64 // absolute, clean guest path
	PathLen uint64
	Flags   uint64 // Linux open flags for FileOpen; mode in the high 32 bits
	Result  int64  // out: a byte count, a handle or 0; a negative errno on failure
}

// File service operations.
const (
	FileOpen      = 1  // Path, Flags -> Result: handle
	FileRead      = 2  // Handle, Offset, Buf, Len, Flags (FileAtCurrent) -> bytes read
	FileWrite     = 3  // Handle, Offset, Buf, Len, Flags (FileAtCurrent) -> bytes written
	FileStat      = 4  // Handle (or Path if Handle is 0; Flags 1: do not follow a symlink) -> struct stat in Buf
	FileClose     = 5  // Handle
	FileReaddir   = 6  // Handle, Buf, Len -> linux_dirent64 records
	FileReadlink  = 7  // Path, Buf, Len -> bytes
	FileMkdir     = 8  // Path, Flags (mode)
	FileUnlink    = 9  // Path, Flags (1: a directory)
	FileRename    = 10 // Path -> Buf (new path, Len bytes)
	FileStdin     = 11 // Buf, Len -> bytes read from pith's standard input; 0 at its end; -EAGAIN if none yet (Flags FileStdinPoll: 1 if a read would not wait, else -EAGAIN)
	FileSymlink   = 12 // Path (the new link), Buf (its target, Len bytes)
	FileTruncate  = 13 // Handle, Offset (the new size)
	FileChmod     = 14 // Path, Flags (mode)
	FileCanonical = 15 // Path, Buf, Len -> bytes: the path with every symbolic link followed
	FileSpawn     = 16 // Buf: a SpawnRequest, Len its size -> a child handle
	FileWaitChild = 17 // Handle (a child), Buf (Len RusageSize, or 0: none) -> -EAGAIN while its program runs, else a Linux wait status, and its struct rusage in Buf
	FileKillChild = 18 // Handle (a child), Flags (a signal number)
	FileFlock     = 19 // Handle, Flags (flock's operation; never waits: EWOULDBLOCK)
	FileFallocate = 21 // Handle, Buf: fallocate's mode, offset and length (3 uint64s, Len 24)
	FileUtimes    = 20 // Path, Buf (two struct timespec, as utimensat takes), Flags (0x100: do not follow a symlink)
	// FileAppSpec: Buf, Len -> bytes: the app tier 1 runs, as NUL-terminated strings: the
	// number of run arguments, the arguments, then the app's environment. -ERANGE with
	// Len set to the size needed if Len is short; -ECANCELED if there is no app. A warm VM
	// waits in it until pith is given the app.
	FileAppSpec = 22
	// FileNetAttach: Buf, Len: the NIC's rings (NetRegionSize bytes of tier-1 memory, page
	// aligned, in NetRing's layout); Handle: the readiness descriptor tier 1 waits on. ->
	// 0, with the guest's numbering in the region's NetConfig, or -ENODEV where the guest
	// has no network (--net none).
	FileNetAttach = 23
	// FileStatfs: Handle (or Path if Handle is 0) -> struct statfs of its file system in Buf.
	FileStatfs = 24
	// FileLink: Path (an existing file), Buf (the new link's path, Len bytes): a hard link.
	FileLink = 25
	// FileFork: Buf, Len: the stream handles (uint64s) that pass to the copy, which
	// has them under the same numbers, as it has every open file; they close here. ->
	// a child handle (FileWaitChild, FileKillChild) for the copy of this guest made at
	// SysPithFork, which the monitor starts as a unikernel of its own.
	FileFork = 26
	// FilePipe: -> a handle h for the read end of a new host pipe, h+1 for its write end;
	// both non-blocking (EAGAIN when empty or full). A write of 0 bytes answers -EPIPE
	// once the read end has closed.
	FilePipe = 27
	// FileKillParent: Flags (a signal number) to the guest this one is a fork's copy of,
	// through its pith (which passes on SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and
	// SIGUSR2; others are dropped, 0 checks) -> 0, or -ESRCH where this guest is none.
	FileKillParent = 28
	// FileMapWindow: Handle (a regular file), Offset (page aligned), Len (no Buf) -> the
	// guest-physical address in the file window (BootInfo.WindowAddr) where the monitor
	// mapped Len bytes of the file from Offset, privately: a write there copies the page
	// for this guest only. -ENODEV where the guest has no window, -ENOMEM when it is full.
	FileMapWindow = 29
	// FileUnmapWindow: Offset (an address FileMapWindow answered): that mapping goes, and
	// its addresses are free again. Nothing in the guest may map them any more.
	FileUnmapWindow = 30
	// FileRusage: Flags (RusageSelf or RusageChildren), Buf (Len RusageSize) -> Linux's
	// struct rusage of this guest's pith, or of the programs it started that ended: on
	// the host, a guest's CPU time is its pith's.
	FileRusage = 31
	// FileSeek: Handle, Offset (an int64), Flags (lseek's whence) -> the new offset of the
	// host file's own (lseek on its descriptor).
	FileSeek = 32
	// FileTerminal: Handle (a standard stream, 0-2), Flags (an ioctl request on a
	// terminal, one TerminalRequest accepts), Buf and Len (its argument's bytes, as
	// Linux's ioctl takes them) or Offset (an integer argument) -> the ioctl's answer,
	// made on pith's own stream; -ENOTTY where that stream is no terminal.
	FileTerminal = 33
	// FileNotify: Handle (a child, or a stream handle: a pipe's end), Flags (NotifyExit
	// for a child; NotifyRead, NotifyWrite or NotifyClosed for a stream; NotifyStdin) -> 1 if
	// that is so already; 0 once the monitor watches for it, after which it sets
	// BootInfo.HostReady and wakes the guest, once; -ENODEV before FileNotifyAttach;
	// -EBADF, -ECHILD or -EINVAL for a handle or flags that are none of these. A guest
	// waits for programs and pipes this way instead of asking again and again (one exit
	// each).
	FileNotify = 34
	// FileNotifyAttach: Handle: the readiness descriptor tier 1 waits on, which tier 0
	// makes readable when the monitor sets BootInfo.HostReady.
	FileNotifyAttach = 35
	// FileRecordLock: Handle (a host file), Flags (fcntl's F_GETLK, F_SETLK, F_OFD_GETLK
	// or F_OFD_SETLK; never waits: EAGAIN or EACCES), Buf and Len (a struct flock,
	// FlockSize bytes, which F_GETLK's answer overwrites) -> 0 or -errno.
	FileRecordLock = 36
)

// FlockSize is the size of Linux's struct flock on x86-64.
const FlockSize = 32

// FileNotify's Flags.
const (
	NotifyExit   = 1  // the child's program has ended
	NotifyRead   = 2  // a read would not find the pipe empty (data, or its end)
	NotifyWrite  = 4  // a write would not find the pipe full (room, or its reader gone)
	NotifyClosed = 8  // the pipe's other end has closed (its reader, for a write end)
	NotifyStdin  = 16 // pith's standard input has bytes, or its end (Handle unused)
)

// FileStdinPoll, in FileStdin's Flags, asks only whether a read would find input or its
// end, taking nothing.
const FileStdinPoll = 1

// TerminalRequest says whether req is a terminal ioctl the monitor makes for the guest
// (FileTerminal), and the size in bytes of its argument, read from the guest (in) or
// written to it; a size of 0 is an integer argument, in Offset. Linux's struct termios
// (TCGETS) is 36 bytes, its struct winsize 8.
func TerminalRequest(req uint64) (size int, in, ok bool) {
	switch req {
	case 0x5401: // TCGETS
		return 36, false, true
	case 0x5402, 0x5403, 0x5404: // TCSETS, TCSETSW, TCSETSF
		return 36, true, true
	case 0x5409, 0x540a, 0x540b: // TCSBRK (tcdrain), TCXONC (tcflow), TCFLSH (tcflush)
		return 0, true, true
	case 0x5411, 0x541b: // TIOCOUTQ, FIONREAD (TIOCINQ)
		return 4, false, true
	case 0x5413: // TIOCGWINSZ
		return 8, false, true
	case 0x5414: // TIOCSWINSZ
		return 8, true, true
	}
	return 0, false, false
}

// FileAtCurrent, in FileRead's and FileWrite's Flags, reads or writes at the host file's
// own offset and moves it (read, write), instead of at Offset (pread, pwrite): the
// offset the guest's dups, the programs it started and a fork's copy share with it, as
// Linux's open file description.
const FileAtCurrent = 1

// FileRusage's Flags, and the size of Linux's struct rusage.
const (
	RusageSelf     = 0
	RusageChildren = 1
	RusageSize     = 144
)

// SpawnRequest asks the monitor to start a program as a unikernel of its own (execve in
// a vfork child).
type SpawnRequest struct {
	Strings    uint64 // NUL-terminated: the path to open, the working directory, the program's guest path (its /proc/self/exe), argv, envp
	StringsLen uint64
	Argc, Envc uint64
	Stdio      [3]uint64 // Spawn*: what the program's descriptors 0, 1 and 2 are
	Handle     [3]uint64 // in: the host file for SpawnFile; out: pith's end of the pipe for SpawnPipeIn and SpawnPipeOut
	// Inherited are the program's descriptors above 2 that are host files or pipes the
	// guest has open (not close-on-exec), NInherited of them.
	Inherited  [SpawnMaxInherited]SpawnFD
	NInherited uint64
	Umask      uint64 // the program's file mode creation mask
}

// SpawnMaxInherited bounds the descriptors above 2 a started program inherits.
const SpawnMaxInherited = 32

// SpawnFD is a descriptor above 2 a started program inherits: Kind SpawnFile (a host file
// by its Handle, open with its Flags: O_ACCMODE, O_APPEND...; its offset is the host
// file's, shared), or SpawnPipeIn or SpawnPipeOut (a pipe, as for Stdio: Handle out is
// pith's end).
type SpawnFD struct {
	FD     uint32
	Flags  uint32
	Kind   uint64
	Handle uint64
}

// What a started program's standard descriptor is.
const (
	SpawnNull    = 0
	SpawnStdin   = 1 // pith's own standard input, output or error
	SpawnStdout  = 2
	SpawnStderr  = 3
	SpawnFile    = 4 // a host file the guest has open
	SpawnPipeIn  = 5 // a pipe the program reads and the guest writes (FileWrite on Handle)
	SpawnPipeOut = 6 // a pipe the program writes and the guest reads (FileRead on Handle)
	// SpawnLikeStdout, for descriptor 2 only, is the program's standard output itself (a
	// pipe's write end both name: 2>&1), so that their writes keep their order.
	SpawnLikeStdout = 7
)

// What the identity calls answer: the app is its VM's first process, started by no one
// the guest can see, as root of its own (user-namespace-like) world.
const (
	AppPID  = 1
	AppPPID = 0
	AppUID  = 0
	AppGID  = 0
)

// FastCallPattern is a system-call site in a Go executable that tier 1 rewrites so that
// the identity calls (getpid, getppid, get[e]uid, get[e]gid) are answered in the app's
// own address space, with no trap (one trap costs ~1.5 us on kvm-pvm, eight native calls).
// Go makes nearly every system call of its syscall package from the two assembly
// functions below. The monitor finds them in the app's file; tier 1 checks the bytes
// again and replaces Code[Patch:Patch+Len], one instruction and then SYSCALL, with a
// JMP to a stub that does the same work.
type FastCallPattern struct {
	Name  string // the function, as Go names it
	Code  []byte // the function's first bytes, as Go's assembler emits them (Go 1.19 on)
	Patch int    // where the rewritten instructions start in Code
	Len   int    // how many bytes they take: at least the 5 of a JMP rel32, SYSCALL last
}

// FastCallPatterns: tier 1's --fast-calls names a site by its index here.
var FastCallPatterns = [...]FastCallPattern{
	{
		Name: "internal/runtime/syscall/linux.Syscall6",
		Code: []byte{
			0x49, 0x89, 0xf2, // MOVQ SI, R10
			0x48, 0x89, 0xfa, // MOVQ DI, DX
			0x48, 0x89, 0xce, // MOVQ CX, SI
			0x48, 0x89, 0xdf, // MOVQ BX, DI
			0x0f, 0x05, // SYSCALL
			0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff, // CMPQ AX, $-0xfff
		},
		Patch: 9, Len: 5,
	},
	{
		Name: "syscall.rawSyscallNoError",
		Code: []byte{
			0x48, 0x8b, 0x7c, 0x24, 0x10, // MOVQ a1+8(FP), DI
			0x48, 0x8b, 0x74, 0x24, 0x18, // MOVQ a2+16(FP), SI
			0x48, 0x8b, 0x54, 0x24, 0x20, // MOVQ a3+24(FP), DX
			0x48, 0x8b, 0x44, 0x24, 0x08, // MOVQ trap+0(FP), AX
			0x0f, 0x05, // SYSCALL
			0x48, 0x89, 0x44, 0x24, 0x28, // MOVQ AX, r1+32(FP)
			0x48, 0x89, 0x54, 0x24, 0x30, // MOVQ DX, r2+40(FP)
			0xc3, // RET
		},
		Patch: 15, Len: 7,
	},
}

// FastCallAlign: Go starts every function at a multiple of this, so a pattern found
// elsewhere is not the function.
const FastCallAlign = 16
