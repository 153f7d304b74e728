// Package monitor runs one pith guest: it creates the KVM VM and its memory, loads the
// kernel, runs the vCPU and serves the guest's calls (console, exit, crash reports, memory
// release) until the guest exits.
package monitor

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/host/monitor/boot"
	"github.com/pithvm/pith/host/monitor/kvm"
	"github.com/pithvm/pith/host/monitor/memory"
)

// Mode selects how the guest's supervisor code runs.
type Mode int

const (
	// ModeAuto switches to native execution on kvm-pvm and runs as an ordinary x86-64
	// supervisor on hardware KVM.
	ModeAuto Mode = iota
	// ModeStandard never uses kvm-pvm's native switch. On kvm-pvm the supervisor then runs
	// in the host's instruction emulator, ~2,500x slower: for testing that path only.
	ModeStandard
)

// Config describes one guest.
type Config struct {
	Kernel  string
	Memory  uint64 // bytes
	CPUs    int
	Args    []string // tier 1's argv
	Env     []string
	Stdout  io.Writer
	Stderr  io.Writer
	Mode    Mode
	Timing  bool // stop once when tier 1 reaches main to time it
	Started time.Time
	// Deadline, if set, stops a guest still running after it and reports where it was.
	Deadline time.Duration
	// DeferTeardown hands the VM to a reaper process to destroy, and leaves guest memory
	// mapped, for a caller that exits right after Run returns.
	DeferTeardown bool
	// App, if set, is a static executable the kernel runs (pith run): the monitor maps it
	// into guest memory and tells the kernel where, after Args[:AppArgsAt].
	App       string
	AppArgsAt int
	Mounts    []Mount // host directories shown to the app, besides its working directory
	// Interactive forwards SIGINT, SIGTERM, SIGHUP and SIGQUIT to the guest (a second
	// SIGINT kills it) and serves the guest's standard input from pith's.
	Interactive bool
	Trace       bool   // print every app system call (pith run --trace)
	Workdir     string // the app's working directory; pith's own if empty
	Root        string // the private directories (etc, tmp, home) of the guest that started this one
	Exe         string // the app's guest path, for /proc/self/exe; the app's argv[0] if empty
}

// Result is how a guest ended.
type Result struct {
	ExitCode int
	Exits    uint64
	Stats    abi.Stats
	PVM      bool
	Assists  uint64 // instructions the monitor performed for kvm-pvm's emulator
	// Wall times from Config.Started.
	Booted, MainReached, Exited time.Duration
	GuestStartNanos             uint64 // TSC-derived time from the first guest instruction to main (0 if unknown)
}

// CrashError is a guest that died.
type CrashError struct {
	Msg string
}

func (e *CrashError) Error() string { return e.Msg }

// Run boots the guest and runs it to completion.
func Run(c Config) (*Result, error) {
	if c.Started.IsZero() {
		c.Started = time.Now()
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	if c.CPUs < 1 || c.CPUs > abi.MaxCPUs {
		return nil, fmt.Errorf("--cpus %d: pith runs guests on 1 to %d vCPUs", c.CPUs, abi.MaxCPUs)
	}
	sys, err := kvm.Open()
	if err != nil {
		return nil, err
	}
	defer sys.Close()
	vm, err := sys.CreateVM()
	if err != nil {
		return nil, err
	}
	defer vm.Close()
	// Memory before anything else: on kvm-pvm the first memory-slot change costs ~0.2 ms
	// on a fresh VM but ~7 ms once the irqchip exists (docs/kvm-pvm.md). It still costs
	// ~0.45 ms per GiB, so the kernel is loaded and the CPUID table read meanwhile.
	g, err := memory.New(c.Memory)
	if err != nil {
		return nil, err
	}
	if !c.DeferTeardown {
		// A caller about to exit leaves guest memory to its exit, where KVM drops its
		// whole shadow MMU at once: munmap of memory KVM still maps invalidates it range
		// by range, 0.5-0.8 ms for 2 GiB (measured).
		defer g.Close()
	}
	slot := make(chan error, 1)
	go func() { slot <- vm.SetMemory(0, 0, g.Bytes()) }()
	k, kernelErr := boot.LoadKernel(c.Kernel)
	cpuid, cpuidErr := sys.SupportedCPUID()
	if err := <-slot; kernelErr == nil && cpuidErr == nil && err != nil {
		return nil, err
	}
	if kernelErr != nil {
		return nil, kernelErr
	}
	defer k.Close()
	if cpuidErr != nil {
		return nil, cpuidErr
	}
	_ = vm.SetTSSAddr(0xfffbd000) // needed by Intel VT-x only
	if err := vm.CreateIRQChip(); err != nil {
		return nil, err
	}
	cpus := make([]*kvm.VCPU, c.CPUs)
	for i := range cpus {
		if cpus[i], err = vm.CreateVCPU(i); err != nil {
			return nil, err
		}
		defer cpus[i].Close()
		if err := cpus[i].SetCPUID(cpuid); err != nil {
			return nil, err
		}
	}
	if c.DeferTeardown {
		// The reaper is started now, while the guest boots on another host CPU, and holds
		// the VM from here on.
		fds := []int{vm.FD()}
		for _, cpu := range cpus {
			fds = append(fds, cpu.FD())
		}
		reaped := make(chan struct{})
		go func() {
			deferTeardown(fds...)
			close(reaped)
		}()
		defer func() { <-reaped }()
	}
	pvm := isPVM(cpus[0])
	flags := uint64(0)
	var xcr0 uint64
	if pvm && c.Mode == ModeAuto {
		flags |= abi.FlagPVM
	} else {
		for _, cpu := range cpus {
			xcr0 = setXCR0(cpu, cpuid)
		}
	}
	if c.Timing {
		flags |= abi.FlagTiming
	}
	if c.Trace {
		flags |= abi.FlagTrace
	}
	khz, err := tscKHz(cpus[0])
	if err != nil {
		return nil, err
	}
	var seed [4]uint64
	var sb [32]byte
	if _, err := rand.Read(sb[:]); err != nil {
		return nil, err
	}
	for i := range seed {
		seed[i] = binary.LittleEndian.Uint64(sb[8*i:])
	}
	bc := boot.Config{
		CPUs: c.CPUs, Argv: c.Args, Env: guestEnv(c.Env, c.Memory), Flags: flags, TSCKHz: khz,
		WallNanos: uint64(time.Now().UnixNano()), Seed: seed,
	}
	if c.App != "" {
		f, err := os.Open(c.App)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		bc.App, bc.AppSize = f, uint64(fi.Size())
		bc.AppAddr = boot.AppAddr(c.Memory, bc.AppSize)
		argv := append([]string(nil), c.Args[:c.AppArgsAt]...)
		cwd := c.Workdir
		if cwd == "" {
			cwd, _ = os.Getwd()
		}
		argv = append(argv, fmt.Sprintf("--app-addr=%#x", bc.AppAddr), fmt.Sprintf("--app-size=%d", bc.AppSize), "--cwd="+cwd, "--exe="+c.Exe, fmt.Sprintf("--trace=%v", c.Trace))
		bc.Argv = append(argv, c.Args[c.AppArgsAt:]...)
	}
	st, err := k.Install(g, bc)
	if err != nil {
		return nil, err
	}
	for i, cpu := range cpus {
		if err := setState(cpu, st, i); err != nil {
			return nil, err
		}
		if i > 0 {
			if err := cpu.SetRunnable(); err != nil {
				return nil, err
			}
		}
	}
	m := &machine{cfg: c, kernel: k, guest: g, cpus: cpus, pvm: pvm, xcr0: xcr0}
	if c.App != "" {
		exe, _ := filepath.Abs(c.App)
		if m.files, err = newFileService(exe, c.Mounts, c.Root, envValue(c.Env, "HOME")); err != nil {
			return nil, err
		}
		m.files.spawnFlags = SpawnFlags(&c)
		defer m.files.close()
	}
	m.info = (*abi.BootInfo)(unsafe.Pointer(&g.Bytes()[abi.BootInfoAddr]))
	m.res.PVM = pvm
	m.res.Booted = time.Since(c.Started)
	if c.Interactive {
		stop := m.forwardSignals(vm)
		defer stop()
		if m.files != nil {
			m.files.readStdin()
		}
	}
	if c.Deadline > 0 {
		t := time.AfterFunc(c.Deadline, func() {
			m.expired.Store(true)
			m.stopAll()
		})
		defer t.Stop()
	}
	return m.run()
}

// envValue is the value of key in env, the last one set.
func envValue(env []string, key string) string {
	v := ""
	for _, e := range env {
		if k, val, ok := strings.Cut(e, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// guestEnv is the guest's environment: env, plus a default GOMEMLIMIT of 3/4 of guest
// memory. A Go runtime cannot otherwise know its machine's size; without it, a runtime
// whose background GC is starved of CPU (a busy host) lets the heap grow far past its goal
// (measured: 186 MB against a 41 MB goal in a 256 MiB guest), and the guest dies.
func guestEnv(env []string, memory uint64) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "GOMEMLIMIT=") {
			return env
		}
	}
	return append(append([]string(nil), env...), fmt.Sprintf("GOMEMLIMIT=%dMiB", memory*3/4>>20))
}

// isPVM detects kvm-pvm: its identification MSR reads "PVM".
func isPVM(cpu *kvm.VCPU) bool {
	v, err := cpu.GetMSR(0x4b564d11)
	return err == nil && v == 0x4d5650
}

func tscKHz(cpu *kvm.VCPU) (uint64, error) {
	if v, err := cpu.GetMSR(0x4b564d13); err == nil && v != 0 {
		return v, nil
	}
	if v, err := cpu.TSCKHz(); err == nil && v != 0 {
		return v, nil
	}
	return 0, errors.New("cannot learn the TSC frequency from KVM")
}

// setXCR0 enables every vector state KVM supports (x87, SSE, AVX, AVX-512) and returns it.
func setXCR0(cpu *kvm.VCPU, cpuid []kvm.CPUIDEntry) uint64 {
	for _, e := range cpuid {
		if e.Function == 0xd && e.Index == 0 {
			v := uint64(e.EAX) & 0xe7
			if cpu.SetXCR0(v) == nil {
				return v
			}
		}
	}
	return 1
}

func setState(cpu *kvm.VCPU, st *boot.State, i int) error {
	s, err := cpu.Sregs()
	if err != nil {
		return fmt.Errorf("KVM_GET_SREGS: %w", err)
	}
	code := kvm.Segment{Limit: 0xfffff, Selector: abi.SelKernelCode, Type: 0xb, Present: 1, S: 1, L: 1, G: 1}
	data := kvm.Segment{Limit: 0xfffff, Selector: abi.SelKernelData, Type: 0x3, Present: 1, S: 1, DB: 1, G: 1}
	s.CS = code
	s.DS, s.ES, s.FS, s.GS, s.SS = data, data, data, data, data
	s.TR = kvm.Segment{Base: boot.TSS(i), Limit: 0x67, Selector: abi.SelTSS, Type: 0xb, Present: 1}
	s.LDT = kvm.Segment{Unusable: 1}
	s.GDT = kvm.DTable{Base: abi.GDTAddr, Limit: 9*8 - 1}
	s.IDT = kvm.DTable{Base: abi.IDTAddr, Limit: 256*16 - 1}
	s.CR0, s.CR3, s.CR4, s.EFER = st.CR0, boot.CR3(i), st.CR4, st.EFER
	if err := cpu.SetSregs(&s); err != nil {
		return err
	}
	if err := cpu.SetRegs(&kvm.Regs{RIP: st.RIP, RFLAGS: 2}); err != nil {
		return err
	}
	return cpu.SetMSRs([]kvm.MSR{
		{Index: 0xc0000081, Data: st.STAR},
		{Index: 0xc0000082, Data: st.SyscallEntry},
		{Index: 0xc0000084, Data: st.FMASK},
	})
}

// machine is a booted guest being run: one goroutine, locked to its thread, per vCPU.
type machine struct {
	cfg    Config
	kernel *boot.Kernel
	guest  *memory.Guest
	cpus   []*kvm.VCPU
	info   *abi.BootInfo // inside guest memory
	pvm    bool
	xcr0   uint64 // the guest's XCR0 (for assisted XGETBV)

	mu      sync.Mutex // serialises the vCPUs' exits that touch shared state below
	serial  bytes.Buffer
	res     Result
	assists uint64 // instructions the monitor performed for the emulator

	files *fileService // nil unless the guest runs an app

	exits   atomic.Uint64
	expired atomic.Bool
	stopped atomic.Bool
	killed  atomic.Int32   // exit status when a second interrupt killed the guest
	tids    []atomic.Int32 // each vCPU thread's ID, to kick it out of KVM_RUN
}

// run runs every vCPU until one of them finishes the guest, then stops the others.
func (m *machine) run() (*Result, error) {
	m.tids = make([]atomic.Int32, len(m.cpus))
	type outcome struct {
		res *Result
		err error
	}
	done := make(chan outcome, len(m.cpus))
	for i := range m.cpus {
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			m.tids[i].Store(int32(unix.Gettid()))
			if m.stopped.Load() {
				m.cpus[i].SetImmediateExit(true)
			}
			res, err := m.loop(i)
			done <- outcome{res, err}
		}()
	}
	first := <-done
	m.stopAll()
	for range len(m.cpus) - 1 {
		<-done
	}
	if code := m.killed.Load(); code != 0 {
		fmt.Fprintln(m.cfg.Stderr, "pith: killed the guest (interrupted twice)")
		return &Result{ExitCode: int(code)}, nil
	}
	m.res.Exits = m.exits.Load()
	m.res.Assists = m.assists
	m.res.Stats = m.info.Stats
	m.res.Exited = time.Since(m.cfg.Started)
	if first.err != nil {
		return nil, first.err
	}
	return &m.res, nil
}

// forwardSignals passes the signals a user sends pith on to the guest, as Docker does:
// the monitor records them for tier 0 and interrupts vCPU 0, tier 0 posts them to tier 1,
// which gives them to the app. A second SIGINT kills the guest. It returns a stop func.
func (m *machine) forwardSignals(vm *kvm.VM) func() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	go func() {
		interrupts := 0
		for s := range sigs {
			n := s.(unix.Signal)
			if n == unix.SIGINT {
				if interrupts++; interrupts > 1 {
					m.killed.Store(128 + int32(n))
					m.stopAll()
					return
				}
			}
			atomic.OrUint64(&m.info.HostSignals, 1<<(uint(n)-1))
			vm.SignalMSI(0, abi.VectorWakeup)
		}
	}()
	return func() { signal.Stop(sigs) }
}

// stopAll makes every vCPU leave KVM_RUN and its loop.
func (m *machine) stopAll() {
	m.stopped.Store(true)
	for i, cpu := range m.cpus {
		cpu.SetImmediateExit(true)
		if tid := m.tids[i].Load(); tid != 0 {
			unix.Tgkill(unix.Getpid(), int(tid), unix.SIGURG) // kick KVM_RUN out with EINTR
		}
	}
}

// errStopped ends a vCPU's loop because another vCPU finished the guest.
var errStopped = errors.New("stopped")

func (m *machine) loop(i int) (*Result, error) {
	cpu := m.cpus[i]
	for {
		m.info.Stats.Exits = m.exits.Load()
		err := cpu.Run()
		m.exits.Add(1)
		if err != nil {
			if m.expired.Load() {
				m.mu.Lock()
				defer m.mu.Unlock()
				m.drain()
				return nil, m.crashCPU(cpu, fmt.Sprintf("still running after %v (stats %+v)", m.cfg.Deadline, m.info.Stats))
			}
			if m.stopped.Load() {
				return nil, errStopped
			}
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			return nil, fmt.Errorf("KVM_RUN: %w", err)
		}
		m.mu.Lock()
		done, err := m.exit(cpu)
		m.mu.Unlock()
		if err != nil || done {
			return &m.res, err
		}
	}
}

// exit serves one exit of cpu, with m.mu held; it reports whether the guest is finished.
func (m *machine) exit(cpu *kvm.VCPU) (bool, error) {
	switch reason := cpu.ExitReason(); reason {
	case kvm.ExitIO:
		io, err := cpu.IO()
		if err != nil {
			return true, err
		}
		return m.port(cpu, io)
	case kvm.ExitHLT:
		m.drain()
		return true, &CrashError{"guest halted with nothing left to wake it"}
	case kvm.ExitShutdown:
		m.drain()
		return true, m.crashCPU(cpu, "triple fault (the guest reset itself)")
	case kvm.ExitInternalError:
		sub, data := cpu.InternalError()
		if sub == 1 && m.pvm && m.cfg.Mode == ModeStandard {
			err := m.assist(cpu)
			if err == nil {
				return false, nil
			}
			if !errors.Is(err, errNotAssisted) {
				m.drain()
				return true, m.crashCPU(cpu, "emulation assist failed: "+err.Error())
			}
		}
		m.drain()
		what := fmt.Sprintf("KVM internal error %d %x", sub, data)
		if sub == 1 {
			what = "an instruction the hypervisor could not emulate"
			if m.pvm && m.cfg.Mode == ModeStandard {
				what += " (kvm-pvm's emulator, used without the native switch, lacks some instructions)"
			}
		}
		return true, m.crashCPU(cpu, what)
	case kvm.ExitFailEntry:
		return true, m.crashCPU(cpu, "the hypervisor refused to enter the guest")
	case kvm.ExitIntr:
		return false, nil
	default:
		m.drain()
		return true, m.crashCPU(cpu, fmt.Sprintf("unexpected exit reason %d", reason))
	}
}

// port serves an OUT; it reports whether the guest is finished.
func (m *machine) port(cpu *kvm.VCPU, io kvm.IO) (bool, error) {
	if !io.Out {
		for i := range io.Data {
			io.Data[i] = 0xff
		}
		return false, nil
	}
	var val uint32
	switch len(io.Data) {
	case 1:
		val = uint32(io.Data[0])
	case 2:
		val = uint32(binary.LittleEndian.Uint16(io.Data))
	case 4:
		val = binary.LittleEndian.Uint32(io.Data)
	}
	switch io.Port {
	case abi.PortSerial:
		m.serial.Write(io.Data[:1])
		if io.Data[0] == '\n' {
			m.drain()
		}
	case abi.PortConsoleFlush:
		m.drain()
	case abi.PortExit:
		m.drain()
		m.res.ExitCode = int(val)
		return true, nil
	case abi.PortCrash:
		m.drain()
		return true, m.crashReport(abi.CrashKind(val))
	case abi.PortIdle:
		m.drain()
		return true, &CrashError{"guest halted with nothing left to wake it: every thread is blocked with no timeout (a deadlock in the guest)"}
	case abi.PortRelease:
		if err := m.guest.Release(m.info.ReleaseAddr, m.info.ReleaseLen); err != nil {
			return true, &CrashError{fmt.Sprintf("guest asked to release bad memory: %v", err)}
		}
	case abi.PortFile:
		m.serveFile()
	case abi.PortMainReached:
		m.res.MainReached = time.Since(m.cfg.Started)
	}
	return false, nil
}

// drain copies the guest's console ring (and any serial text) to stdout and stderr. The
// ring is guest memory: every index and length in it is checked.
func (m *machine) drain() {
	if m.serial.Len() > 0 {
		m.cfg.Stderr.Write(m.serial.Bytes())
		m.serial.Reset()
	}
	head, tail := m.info.ConsoleHead, m.info.ConsoleTail
	if tail-head > abi.ConsoleSize {
		fmt.Fprintf(m.cfg.Stderr, "pith: guest console ring corrupt (head %d, tail %d); output lost\n", head, tail)
		m.info.ConsoleHead = tail
		return
	}
	ring, _ := m.guest.Slice(abi.ConsoleAddr, abi.ConsoleSize)
	at := func(i uint64) byte { return ring[i%abi.ConsoleSize] }
	for head < tail {
		if tail-head < abi.ConsoleRecordHeader {
			break
		}
		fd := at(head)
		n := uint64(at(head+1)) | uint64(at(head+2))<<8 | uint64(at(head+3))<<16
		head += abi.ConsoleRecordHeader
		if n > tail-head {
			break
		}
		w := m.cfg.Stdout
		if fd == abi.ConsoleStderr {
			w = m.cfg.Stderr
		}
		start, end := head%abi.ConsoleSize, (head+n)%abi.ConsoleSize
		if start < end || n == 0 {
			w.Write(ring[start:end])
		} else {
			w.Write(ring[start:])
			w.Write(ring[:end])
		}
		head += n
	}
	m.info.ConsoleHead = tail
}

var exceptionNames = map[uint64]string{
	0: "divide error", 1: "debug", 2: "NMI", 3: "breakpoint", 4: "overflow", 5: "bound range",
	6: "invalid opcode", 7: "device not available", 8: "double fault", 10: "invalid TSS",
	11: "segment not present", 12: "stack fault", 13: "general protection fault",
	14: "page fault", 16: "x87 floating-point error", 17: "alignment check", 18: "machine check",
	19: "SIMD floating-point error", 21: "control protection",
}

func (m *machine) crashReport(kind abi.CrashKind) error {
	c := m.info.Crash
	r := c.Regs
	var what string
	switch kind {
	case abi.CrashOutOfMem:
		what = fmt.Sprintf("guest out of memory: raise -m (now %d MiB)", m.guest.Size()>>20)
		return &CrashError{what}
	case abi.CrashBadState:
		if c.Tier0 == 0 {
			return &CrashError{"guest kernel refused its boot information (kernel and monitor from different pith versions?)"}
		}
		return &CrashError{m.describe(fmt.Sprintf("tier 0 found its state inconsistent (detail %#x) on vCPU %d", c.Info, c.CPU), r.RIP, regsList(r))}
	}
	name := exceptionNames[r.Vector]
	switch {
	case name != "":
	case r.Vector >= abi.FirstInterruptVector:
		name = fmt.Sprintf("unexpected interrupt (vector %#x)", r.Vector)
	default:
		name = fmt.Sprintf("exception %d", r.Vector)
	}
	where := "in tier 1"
	if c.Tier0 != 0 {
		where = "in tier 0"
	}
	if len(m.cpus) > 1 {
		where += fmt.Sprintf(" on vCPU %d", c.CPU)
	}
	what = fmt.Sprintf("%s %s", name, where)
	if r.Vector == 14 {
		what += fmt.Sprintf(" at address %#x", c.CR2)
	}
	if c.Tier0 != 0 && r.CS&3 == 3 && m.pvm && m.cfg.Mode == ModeStandard {
		// Measured: without the native switch, kvm-pvm enters LSTAR at CPL 3 (CS 0x33), so
		// tier 0's first privileged instruction after a SYSCALL faults. docs/kvm-pvm.md.
		what += fmt.Sprintf(" after %d system calls: kvm-pvm without its native switch runs SYSCALL's target at CPL 3, so tier 0 cannot run there (a host limitation; the standard path needs hardware KVM)", m.info.Stats.Syscalls)
	}
	return &CrashError{m.describe(what, r.RIP, append(regsList(r), [2]any{"fsbase", c.FSBase}))}
}

// crashCPU reports a crash that tier 0 could not report, from the vCPU's registers.
func (m *machine) crashCPU(cpu *kvm.VCPU, what string) error {
	r, err := cpu.Regs()
	if err != nil {
		return &CrashError{"guest crashed: " + what}
	}
	regs := [][2]any{
		{"rax", r.RAX}, {"rbx", r.RBX}, {"rcx", r.RCX}, {"rdx", r.RDX}, {"rsi", r.RSI}, {"rdi", r.RDI},
		{"rbp", r.RBP}, {"rsp", r.RSP}, {"r8", r.R8}, {"r9", r.R9}, {"r10", r.R10}, {"r11", r.R11},
		{"r12", r.R12}, {"r13", r.R13}, {"r14", r.R14}, {"r15", r.R15}, {"rflags", r.RFLAGS},
	}
	if s, err := cpu.Sregs(); err == nil {
		regs = append(regs, [2]any{"cs", uint64(s.CS.Selector)}, [2]any{"cr2", s.CR2}, [2]any{"cr3", s.CR3})
	}
	return &CrashError{m.describe(what, r.RIP, regs)}
}

func regsList(r abi.Regs) [][2]any {
	return [][2]any{
		{"rax", r.RAX}, {"rbx", r.RBX}, {"rcx", r.RCX}, {"rdx", r.RDX}, {"rsi", r.RSI}, {"rdi", r.RDI},
		{"rbp", r.RBP}, {"rsp", r.RSP}, {"r8", r.R8}, {"r9", r.R9}, {"r10", r.R10}, {"r11", r.R11},
		{"r12", r.R12}, {"r13", r.R13}, {"r14", r.R14}, {"r15", r.R15}, {"rflags", r.RFLAGS},
		{"cs", r.CS}, {"err", r.ErrorCode},
	}
}

// describe makes the crash message: one line saying what and where, then the registers.
func (m *machine) describe(what string, rip uint64, regs [][2]any) string {
	var b strings.Builder
	fmt.Fprintf(&b, "guest crashed: %s, RIP %#x", what, rip)
	if sym := m.kernel.Symbolize(rip); sym != "" {
		fmt.Fprintf(&b, " in %s", sym)
	}
	b.WriteString("\n")
	for i, r := range regs {
		fmt.Fprintf(&b, "  %-6s %#016x", r[0], r[1])
		if i%4 == 3 {
			b.WriteString("\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}
