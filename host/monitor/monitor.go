// Package monitor runs one pith guest: it creates the KVM VM and its memory, sets up the
// vCPUs, loads the kernel and the app, runs each vCPU on its own thread and serves the
// guest's calls (console, exit, crash reports, memory release, files, started programs)
// until the guest exits, and a watchdog reports a guest that can never wake.
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
	"strconv"
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
	// DeferTeardown hands the VM and guest memory to a process that tears them down once
	// the caller has exited (holdVM), for a caller that exits right after Run returns.
	DeferTeardown bool
	// App, if set, is a static executable the kernel runs (pith run): the monitor maps it
	// into guest memory and tells the kernel where, after Args[:AppArgsAt].
	App       string
	AppArgsAt int
	Mounts    []Mount // host directories shown to the app, besides its working directory
	// Interactive forwards SIGINT, SIGTERM, SIGHUP and SIGQUIT to the guest (a second
	// SIGINT kills it) and serves the guest's standard input from pith's. Signals, if
	// set, delivers them instead of pith's own signal handling.
	Interactive bool
	Signals     <-chan os.Signal
	// AwaitApp prepares a guest whose app comes later, with Prepared.Run (a warm VM).
	AwaitApp bool
	Trace    bool   // print every app system call (pith run --trace)
	Workdir  string // the app's working directory; pith's own if empty
	Root     string // the private directories (etc, tmp, home) of the guest that started this one
	Exe      string // the app's guest path, for /proc/self/exe; the app's argv[0] if empty
}

// Result is how a guest ended.
type Result struct {
	ExitCode int // 128+N for a death by signal N, as a shell reports it
	Signal   int // N, for an app that died of signal N
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
	p, err := Prepare(c)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return p.Run(c)
}

// Prepared is a guest booted as far as it goes before Run: with Config.AwaitApp, tier 1
// is up, has loaded its app and touched its code, and waits to be told how to run it;
// this is how pith run keeps a VM warm (host/cli/warm.go).
type Prepared struct {
	m       *machine
	vm      *kvm.VM
	cleanup []func() // in reverse order
	ran     bool
	mu      sync.Mutex // Close against Kill
	closed  bool
}

// Close stops the guest if it still runs and releases the VM.
func (p *Prepared) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	if p.m != nil && p.m.done != nil && !p.ran {
		p.m.stopAll()
		p.m.wait()
	}
	for i := len(p.cleanup) - 1; i >= 0; i-- {
		p.cleanup[i]()
	}
	p.cleanup = nil
}

// Kill ends the guest at once; Run then returns status. After Close it does nothing.
func (p *Prepared) Kill(status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.m.killed.Store(int32(status))
	p.m.stopAll()
}

// Ended is closed when the prepared guest stops by itself before Run (a crash while it
// waits for its run).
func (p *Prepared) Ended() <-chan struct{} { return p.m.ended }

// Prepare creates the VM and boots the guest: the run-time parts of c (the app's
// arguments, environment, mounts and standard streams) are Run's.
func Prepare(c Config) (_ *Prepared, err error) {
	if c.Started.IsZero() {
		c.Started = time.Now()
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	if c.AwaitApp && c.App == "" {
		return nil, errors.New("internal error: a warm VM needs its app")
	}
	if c.CPUs < 1 || c.CPUs > abi.MaxCPUs {
		return nil, fmt.Errorf("--cpus %d: pith runs guests on 1 to %d vCPUs", c.CPUs, abi.MaxCPUs)
	}
	p := &Prepared{}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	defers := func(f func()) { p.cleanup = append(p.cleanup, f) }
	sys, err := kvm.Open()
	if err != nil {
		// A bad kernel is named as such on every machine, KVM or not.
		k, kerr := boot.LoadKernel(c.Kernel)
		if kerr != nil {
			return nil, kerr
		}
		k.Close()
		return nil, err
	}
	defers(func() { sys.Close() })
	vm, err := sys.CreateVM()
	if err != nil {
		return nil, err
	}
	defers(func() { vm.Close() })
	p.vm = vm
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
		defers(func() { g.Close() })
	}
	slot := make(chan error, 1)
	go func() { slot <- vm.SetMemory(0, 0, g.Bytes()) }()
	k, kernelErr := boot.LoadKernel(c.Kernel)
	if kernelErr == nil {
		defers(func() { k.Close() })
	}
	host, cpuidErr := readHostCPU(sys)
	if err := <-slot; kernelErr == nil && cpuidErr == nil && err != nil {
		return nil, err
	}
	if kernelErr != nil {
		return nil, kernelErr
	}
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
		cpu := cpus[i]
		defers(func() { cpu.Close() })
		if err := cpus[i].SetCPUID(host.forVCPU(i)); err != nil {
			return nil, err
		}
	}
	if c.DeferTeardown {
		// The holder (or the reaper) is started now, while the guest boots on another host
		// CPU, and holds the VM from here on.
		fds := []int{vm.FD()}
		for _, cpu := range cpus {
			fds = append(fds, cpu.FD())
		}
		reaped := make(chan struct{})
		go func() {
			if !holdVM(fds...) {
				deferTeardown(fds...)
			}
			close(reaped)
		}()
		defers(func() { <-reaped })
	}
	pvm := isPVM(cpus[0])
	if why := host.unmet(pvm); why != "" {
		return nil, errors.New(why)
	}
	flags := uint64(0)
	var xcr0 uint64
	if pvm && c.Mode == ModeAuto {
		flags |= abi.FlagPVM
	} else {
		for _, cpu := range cpus {
			xcr0 = setXCR0(cpu, host.supported)
		}
	}
	if c.Timing {
		flags |= abi.FlagTiming
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
	m := &machine{cfg: c, kernel: k, guest: g, cpus: cpus, pvm: pvm, xcr0: xcr0, khz: khz, stopping: make(chan struct{})}
	defers(func() {
		if m.app != nil {
			m.app.Close()
		}
	})
	if c.App != "" {
		// Tier 1 asks how to run its app (FileAppSpec) once it is up; the app's
		// environment is its own, given then.
		bc.Argv, bc.Env = c.Args[:c.AppArgsAt], guestEnv(nil, c.Memory)
		m.spec = make(chan []byte, 1)
		if m.app, err = os.Open(c.App); err != nil {
			return nil, err
		}
		fi, err := m.app.Stat()
		if err != nil {
			return nil, err
		}
		bc.App, bc.AppSize = m.app, uint64(fi.Size())
		bc.AppAddr = boot.AppAddr(c.Memory, bc.AppSize)
		if c.AwaitApp {
			bc.Flags |= abi.FlagPreload
		}
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
	info, err := g.Slice(abi.BootInfoAddr, uint64(unsafe.Sizeof(abi.BootInfo{})))
	if err != nil {
		return nil, err
	}
	m.info = (*abi.BootInfo)(unsafe.Pointer(&info[0]))
	if c.App != "" {
		m.fastCalls = make(chan string, 1)
		image, err := g.Slice(bc.AppAddr, bc.AppSize)
		if err != nil {
			return nil, err
		}
		go func() { m.fastCalls <- fastCallSites(image) }()
	}
	m.res.PVM = pvm
	m.res.Booted = time.Since(c.Started)
	p.m = m
	defers(func() {
		if m.files != nil {
			m.files.close()
		}
	})
	m.start()
	return p, nil
}

// Run gives the prepared guest its app (c's App, Args after AppArgsAt, Env, Mounts,
// Workdir, Root, Exe, Trace), its standard streams and signals, and runs it to the end.
func (p *Prepared) Run(c Config) (*Result, error) {
	m := p.m
	p.mu.Lock()
	closed := p.closed
	p.ran = true
	p.mu.Unlock()
	if closed {
		return nil, errors.New("internal error: a closed guest was run")
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	m.setRunConfig(c)
	if c.App != "" {
		if m.spec == nil {
			m.stopAll()
			m.wait()
			return nil, errors.New("internal error: a guest prepared without an app was given one")
		}
		spec, err := m.appSpec()
		if err != nil {
			m.stopAll()
			m.wait()
			return nil, err
		}
		m.spec <- spec
	} else if m.spec != nil {
		close(m.spec) // no app: tier 1 is told so and ends
	}
	if c.Interactive {
		stop := m.forwardSignals(p.vm, c.Signals)
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
	return m.wait()
}

// endsProcess reports whether signal sig's default action ends a process
// (abi.SignalsNotEnding), so that a death by it can be reported as one.
func endsProcess(sig uint32) bool {
	return sig >= 1 && sig <= 64 && abi.SignalsNotEnding&(1<<(sig-1)) == 0
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
	khz    uint64 // the guest's TSC frequency

	mu      sync.Mutex // serialises the vCPUs' exits that touch shared state below
	serial  bytes.Buffer
	res     Result
	assists uint64 // instructions the monitor performed for the emulator

	files *fileService // nil unless the guest runs an app

	// The app, for a guest that runs one: Run sends its FileAppSpec answer on spec.
	app       *os.File
	spec      chan []byte
	specBytes []byte
	fastCalls chan string   // the app's rewritable system-call sites (fastCallSites), found while it boots
	stopping  chan struct{} // closed by stopAll

	done    chan outcome
	ended   chan struct{} // closed when the first vCPU's loop ends
	endOnce sync.Once

	exits       atomic.Uint64
	expired     atomic.Bool
	stalled     atomic.Pointer[string] // the watchdog's report of a guest that cannot wake
	stopped     atomic.Bool
	stopOnce    sync.Once
	killed      atomic.Int32   // exit status when the guest was killed (Kill, a second interrupt)
	interrupted atomic.Bool    // killed by a second interrupt
	tids        []atomic.Int32 // each vCPU thread's ID, to kick it out of KVM_RUN
}

// start runs every vCPU, one goroutine locked to its thread each, until one of them
// finishes the guest; wait collects the outcome.
func (m *machine) start() {
	m.tids = make([]atomic.Int32, len(m.cpus))
	m.done = make(chan outcome, len(m.cpus))
	m.ended = make(chan struct{})
	go m.watch()
	for i := range m.cpus {
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			m.tids[i].Store(int32(unix.Gettid()))
			if m.stopped.Load() {
				m.cpus[i].SetImmediateExit(true)
			}
			res, err := m.loop(i)
			m.endOnce.Do(func() { close(m.ended) })
			m.done <- outcome{res, err}
		}()
	}
}

type outcome struct {
	res *Result
	err error
}

// wait waits for the guest to end and stops every vCPU.
func (m *machine) wait() (*Result, error) {
	first := <-m.done
	m.stopAll()
	for range len(m.cpus) - 1 {
		<-m.done
	}
	if code := m.killed.Load(); code != 0 {
		if m.interrupted.Load() {
			fmt.Fprintln(m.cfg.Stderr, "pith: killed the guest (interrupted twice)")
		}
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

// setRunConfig takes Run's part of the configuration; the vCPUs read it under m.mu.
func (m *machine) setRunConfig(c Config) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !c.Started.IsZero() {
		m.cfg.Started = c.Started
	}
	m.cfg.Stdout, m.cfg.Stderr = c.Stdout, c.Stderr
	m.cfg.App, m.cfg.Args, m.cfg.AppArgsAt, m.cfg.Env = c.App, c.Args, c.AppArgsAt, c.Env
	m.cfg.Mounts, m.cfg.Workdir, m.cfg.Root, m.cfg.Exe = c.Mounts, c.Workdir, c.Root, c.Exe
	m.cfg.Trace, m.cfg.Interactive, m.cfg.Deadline = c.Trace, c.Interactive, c.Deadline
}

// appSpec readies the run for tier 1: opens the file service and encodes what
// FileAppSpec returns.
func (m *machine) appSpec() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &m.cfg
	if fi, err := os.Stat(c.App); err != nil {
		return nil, err
	} else if prepared, err := m.app.Stat(); err != nil || !os.SameFile(fi, prepared) {
		return nil, fmt.Errorf("%s is not the executable this VM was prepared with", c.App)
	}
	exe, _ := filepath.Abs(c.App)
	files, err := newFileService(exe, c.Mounts, c.Root, envValue(c.Env, "HOME"))
	if err != nil {
		return nil, err
	}
	files.spawnFlags = SpawnFlags(c)
	m.files = files
	if c.Trace {
		atomic.OrUint64(&m.info.Flags, abi.FlagTrace)
	}
	cwd := c.Workdir
	if cwd == "" {
		cwd, _ = os.Getwd()
	}
	fastCalls := <-m.fastCalls
	m.fastCalls <- fastCalls
	args := []string{fmt.Sprintf("--app-addr=%#x", m.info.AppAddr), fmt.Sprintf("--app-size=%d", m.info.AppSize),
		"--cwd=" + cwd, "--exe=" + c.Exe, fmt.Sprintf("--trace=%v", c.Trace), "--fast-calls=" + fastCalls}
	args = append(args, c.Args[c.AppArgsAt:]...)
	var b bytes.Buffer
	b.WriteString(strconv.Itoa(len(args)))
	b.WriteByte(0)
	for _, s := range append(args, guestEnv(c.Env, c.Memory)...) {
		b.WriteString(s)
		b.WriteByte(0)
	}
	return b.Bytes(), nil
}

// serveAppSpec answers tier 1's FileAppSpec, waiting, with m.mu released, until Run has
// the app. A guest that ends before (Close, or Run without an app) gets ECANCELED.
func (m *machine) serveAppSpec(mmu memory.Virtual, r *abi.FileRequest) int64 {
	if m.spec == nil {
		return -int64(unix.ENOSYS)
	}
	if m.specBytes == nil {
		m.mu.Unlock()
		var spec []byte
		select {
		case spec = <-m.spec:
		case <-m.stopping:
		}
		m.mu.Lock()
		if spec == nil && m.specBytes == nil {
			return -int64(unix.ECANCELED)
		}
		if spec != nil {
			m.specBytes = spec
		}
	}
	if uint64(len(m.specBytes)) > r.Len {
		r.Len = uint64(len(m.specBytes))
		return -int64(unix.ERANGE)
	}
	if mmu.Write(r.Buf, m.specBytes) != nil {
		return -int64(unix.EFAULT)
	}
	return int64(len(m.specBytes))
}

// forwardSignals passes the signals a user sends pith on to the guest, as Docker does:
// the monitor records them for tier 0 and interrupts vCPU 0, tier 0 posts them to tier 1,
// which gives them to the app. A second SIGINT kills the guest. It returns a stop func.
// Signals already caught elsewhere (Config.Signals) come from that channel instead.
func (m *machine) forwardSignals(vm *kvm.VM, caught <-chan os.Signal) (stop func()) {
	sigs := caught
	unnotify := func() {}
	if sigs == nil {
		ch := make(chan os.Signal, 8)
		signal.Notify(ch, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
		sigs, unnotify = ch, func() { signal.Stop(ch) }
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		interrupts := 0
		for {
			var s os.Signal
			select {
			case s = <-sigs:
			case <-done:
				return
			}
			n := s.(unix.Signal)
			if n == unix.SIGINT {
				if interrupts++; interrupts > 1 {
					m.interrupted.Store(true)
					m.killed.Store(128 + int32(n))
					m.stopAll()
					return
				}
			}
			atomic.OrUint64(&m.info.HostSignals, 1<<(uint(n)-1))
			vm.SignalMSI(0, abi.VectorWakeup)
		}
	}()
	// Once stop returns, nothing here touches the VM: it may be closed.
	return func() {
		unnotify()
		close(done)
		<-stopped
	}
}

// stopAll makes every vCPU leave KVM_RUN and its loop.
func (m *machine) stopAll() {
	m.stopOnce.Do(func() { close(m.stopping) })
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
			if msg := m.stalled.Load(); msg != nil {
				m.mu.Lock()
				defer m.mu.Unlock()
				m.drain()
				return nil, m.crashCPU(cpu, *msg)
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
		if sig := val - abi.ExitSignaled; val >= abi.ExitSignaled && sig < 65 {
			m.res.ExitCode = 128 + int(sig)
			if endsProcess(sig) {
				m.res.Signal = int(sig)
			}
		}
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
