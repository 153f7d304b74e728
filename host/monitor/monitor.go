// Package monitor runs one pith guest: it creates the KVM VM and its memory, sets up the
// vCPUs, loads the kernel and the app, runs each vCPU on its own thread and serves the
// guest's calls (console, exit, crash reports, memory release, files, started programs)
// until the guest exits, and a watchdog reports a guest that can never wake.
package monitor

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/host/monitor/boot"
	"github.com/pithvm/pith/host/monitor/fileservice"
	"github.com/pithvm/pith/host/monitor/kvm"
	"github.com/pithvm/pith/host/monitor/memory"
	"github.com/pithvm/pith/host/network"
	"github.com/pithvm/pith/host/program"
)

// fileWindowSize is the guest-physical space a dynamically linked app's shared libraries
// are mapped into (memory.Guest.AddWindow): a mapping that no longer fits is copied
// instead. python3 -c pass maps four libraries, 3 MiB of files (each twice while ld.so
// loads it: the whole file, then its segments over that); KVM keeps
// per-page bookkeeping for the whole slot where it shadows page tables (kvm-pvm): 1 MiB
// per 512 MiB.
const fileWindowSize = 512 << 20

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
	// Profile, if set, is where a profile of the guest's vCPUs is written when it ends
	// (PITH_GUESTPROFILE; guestProfile).
	Profile string
	// DeferTeardown hands the VM and guest memory to a process that tears them down once
	// the caller has exited (holdVM), for a caller that exits right after Run returns.
	DeferTeardown bool
	// App, if set, is a static executable the kernel runs (pith run): the monitor maps it
	// into guest memory and tells the kernel where, after Args[:AppArgsAt].
	App       string
	AppArgsAt int
	Mounts    []fileservice.Mount // host directories shown to the app, besides its working directory
	// Interactive forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH
	// to the guest (a second SIGINT kills one that has not taken the first), serves the
	// guest's standard input from pith's, and tells it when the reader of pith's stdout
	// or stderr has gone. Signals, if set, delivers them instead of pith's own signal
	// handling.
	Interactive bool
	Signals     <-chan os.Signal
	// AwaitApp prepares a guest whose app comes later, with Prepared.Run (a warm VM).
	AwaitApp bool
	Trace    bool   // print every app system call (pith run --trace)
	Workdir  string // the app's working directory; pith's own if empty
	Root     string // the private directories (etc, tmp, home) of the guest that started this one
	Exe      string // the app's guest path, for /proc/self/exe; the app's argv[0] if empty
	Rootfs   string // an image's files, the guest's / (read-only; writes go to Layer) instead of the host's project
	Layer    string // with Rootfs: the host directory of the guest's writable layer; empty, a temporary one (fileservice.Options.Layer)
	ReadOnly bool   // with Rootfs: no writable layer; writes beneath / outside the mounts, /tmp and $HOME fail with EROFS
	// Network is the guest's network: "none" (its loopback only), "tap" (its NIC on the
	// tap device Tap, numbered Numbering, DNS its nameservers) or "" (user mode: a gateway
	// through host sockets, host/network); Publish, the host ports it gets (-p).
	Network   string
	Publish   []network.Port
	Tap       string
	Numbering network.Numbering
	DNS       []netip.Addr
	// Hostname is the guest's name (uname, /etc/hostname); the host's if empty. Hosts are
	// the lines --add-host adds to its /etc/hosts.
	Hostname string
	Hosts    []fileservice.Host
	// Fork, if set, makes the guest a copy of another made at its fork (pith run
	// --forked): it resumes from the parent's memory instead of booting.
	Fork *Fork
	// Inherited are the app's descriptors above 2: the host files the program that
	// started it had open there (a started program's pith run).
	Inherited []InheritedFile
	// Umask is the app's file mode creation mask at start, where the guest that started
	// it chose one (pith run --spawned-umask); nil: pith's own.
	Umask *uint32
}

// InheritedFile is a host file or pipe an app has open at a descriptor above 2 when it
// starts: Kind abi.SpawnFile (a file open with Flags: O_ACCMODE, O_APPEND...; Writable as
// the file service's handles are, fileservice.Service.AddFile), or
// abi.SpawnPipeIn or SpawnPipeOut (a pipe the app reads or writes).
type InheritedFile struct {
	FD       int
	File     *os.File
	Kind     uint64
	Flags    uint32
	Writable bool
	Path     string // the app's path of it (/proc/self/fd, openat)
}

// Result is how a guest ended.
type Result struct {
	ExitCode int // 128+N for a death by signal N, as a shell reports it
	Signal   int // N, for an app that died of signal N
	// OutOfMemory: the guest's memory ran out (tier 0 refused a frame) and the app did
	// not exit 0, as a container the kernel's OOM killer ended.
	OutOfMemory bool
	Exits       uint64
	Stats       abi.Stats
	PVM         bool
	Assists     uint64 // instructions the monitor performed for kvm-pvm's emulator
	NIC         NICStats
	// Wall times from Config.Started.
	Booted, MainReached, Exited time.Duration
	GuestStartNanos             uint64 // TSC-derived time from the first guest instruction to main (0 if unknown)
}

// CrashError is a guest that died.
type CrashError struct {
	Msg         string
	OutOfMemory bool // the guest's memory had run out (Result.OutOfMemory)
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
	if c.App != "" && program.Dynamic(c.App) && os.Getenv("PITH_FILE_WINDOW") != "off" {
		// Its shared libraries are mapped from the host's page cache (memory/window.go);
		// PITH_FILE_WINDOW=off copies them instead, for measuring the difference.
		if err := g.AddWindow(fileWindowSize); err != nil {
			return nil, err
		}
	}
	slot := make(chan error, 1)
	go func() {
		err := vm.SetMemory(0, 0, g.Bytes())
		if window, at := g.WindowBytes(); err == nil && window != nil {
			err = vm.SetMemory(1, at, window)
		}
		slot <- err
	}()
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
	_ = vm.SetTSSAddr(boot.VTxTSSAddr) // needed by Intel VT-x only
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
			xcr0 = setXCR0(cpu, host)
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
		// The scan reads guest memory: a start that fails (a port in use) waits for it
		// before the memory is unmapped.
		defers(func() { m.fastCalls <- <-m.fastCalls })
	}
	if c.Fork != nil {
		if err := resumeFork(m, c.Fork); err != nil {
			return nil, err
		}
	}
	m.res.PVM = pvm
	m.res.Booted = time.Since(c.Started)
	p.m = m
	m.vm = vm
	switch {
	case c.Network == "tap":
		n, err := newTapNIC(c.Tap, c.Numbering)
		if err != nil {
			return nil, err
		}
		m.nic.Store(n)
	case len(c.Publish) > 0 && c.Network != "none":
		n, err := newNIC(c.Publish)
		if err != nil {
			return nil, err
		}
		m.nic.Store(n)
	}
	defers(func() {
		if m.files != nil {
			m.files.Close()
		}
		if n := m.nic.Load(); n != nil {
			n.close()
		}
	})
	if c.Fork == nil { // a copy starts once its files are its parent's (Run)
		m.start()
	}
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
		if c.Fork != nil {
			m.files.Adopt(c.Fork.State)
			if m.info.HostReadyFD != 0 {
				m.notifyFiles()
			}
			m.start()
		}
	} else if m.spec != nil {
		close(m.spec) // no app: tier 1 is told so and ends
	}
	if c.Interactive {
		stop := m.forwardSignals(p.vm, c.Signals)
		defer stop()
		defer m.watchStreams()()
		if m.files != nil {
			m.files.ServeStdin()
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

// LiveStats is what a running guest uses now.
type LiveStats struct {
	GuestMemory      uint64 // bytes of guest memory tier 1 has in use
	GuestMemoryLimit uint64 // bytes of guest memory (-m)
	NIC              NICStats
	// Guest is tier 0's counters so far (traps, interrupts, thread switches, wake-ups)
	// and the exits to the monitor: read twice, they say what an idle guest does.
	Guest GuestCounts
	// Process is this monitor process's own Go memory (runtime.MemStats), in bytes.
	Process ProcessMemory
}

// ProcessMemory is what the monitor's Go runtime holds: heap in use, heap it holds but
// has not returned to the host, goroutine stacks, and all it took from the host.
type ProcessMemory struct {
	HeapInuse, HeapIdleUnreleased, StackInuse, Sys uint64
	Goroutines                                     int
}

// GuestCounts are the running totals of abi.Stats that say where a guest's time goes.
type GuestCounts struct {
	Exits, Syscalls, AppSyscalls, Exceptions, PageFaults, Interrupts, Switches, IPIsSent, Wakeups uint64
}

// Live reads the running guest's LiveStats. Preconditions: Close has not been called
// (guest memory is unmapped then).
func (p *Prepared) Live() LiveStats {
	m := p.m
	ls := LiveStats{GuestMemory: atomic.LoadUint64(&m.info.Stats.Frames) * 4096, GuestMemoryLimit: m.cfg.Memory}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	ls.Process = ProcessMemory{HeapInuse: ms.HeapInuse, HeapIdleUnreleased: ms.HeapIdle - ms.HeapReleased,
		StackInuse: ms.StackInuse, Sys: ms.Sys, Goroutines: runtime.NumGoroutine()}
	st := &m.info.Stats
	ls.Guest = GuestCounts{
		Exits:       m.exits.Load(),
		Syscalls:    atomic.LoadUint64(&st.Syscalls),
		AppSyscalls: atomic.LoadUint64(&st.AppSyscalls),
		Exceptions:  atomic.LoadUint64(&st.Exceptions),
		PageFaults:  atomic.LoadUint64(&st.PageFaults),
		Interrupts:  atomic.LoadUint64(&st.Interrupts),
		Switches:    atomic.LoadUint64(&st.Switches),
		IPIsSent:    atomic.LoadUint64(&st.IPIsSent),
		Wakeups:     atomic.LoadUint64(&st.Wakeups),
	}
	if n := m.nic.Load(); n != nil {
		ls.NIC = n.stats()
	}
	return ls
}

// Published is the ports the guest is published on, with the host ports the host picked
// where -p named none; nil without a user-mode network.
func (p *Prepared) Published() []network.Port {
	if n := p.m.nic.Load(); n != nil && n.net != nil {
		return n.net.Published()
	}
	return nil
}
