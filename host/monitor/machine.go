package monitor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/host/monitor/boot"
	"github.com/pithvm/pith/host/monitor/fileservice"
	"github.com/pithvm/pith/host/monitor/kvm"
	"github.com/pithvm/pith/host/monitor/memory"
)

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

	files *fileservice.Service // nil unless the guest runs an app
	vm    *kvm.VM

	nic         atomic.Pointer[nic] // the guest's network, once started
	nicAttached bool                // tier 1 attached its rings (m.mu)

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
	profile     *guestProfile  // nil unless Config.Profile
}

// start runs every vCPU, one goroutine locked to its thread each, until one of them
// finishes the guest; wait collects the outcome.
func (m *machine) start() {
	m.tids = make([]atomic.Int32, len(m.cpus))
	m.done = make(chan outcome, len(m.cpus))
	m.ended = make(chan struct{})
	go m.watch()
	if m.cfg.Profile != "" {
		m.profile = newGuestProfile(m)
		go m.profile.kick(m)
	}
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
	if m.profile != nil {
		if err := m.profile.write(m.cfg.Profile); err != nil {
			fmt.Fprintf(m.cfg.Stderr, "pith: PITH_GUESTPROFILE: %v\n", err)
		}
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
	if n := m.nic.Load(); n != nil {
		m.res.NIC = n.stats()
	}
	m.res.Exited = time.Since(m.cfg.Started)
	oom := m.info.OutOfMemory != 0
	if first.err != nil {
		if c, ok := first.err.(*CrashError); ok && oom {
			c.OutOfMemory = true
		}
		if c, ok := first.err.(*CrashError); ok && m.stopReason() != "" && len(m.cpus) > 1 {
			c.Msg += m.whereAll()
		}
		return nil, first.err
	}
	m.res.OutOfMemory = oom && m.res.ExitCode != 0
	return &m.res, nil
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

// stopReason says why the monitor stopped a guest that was still running (its deadline
// passed, or the watchdog found it stuck); "" if it did not.
func (m *machine) stopReason() string {
	if m.expired.Load() {
		return fmt.Sprintf("still running after %v (stats %+v)", m.cfg.Deadline, m.info.Stats)
	}
	if msg := m.stalled.Load(); msg != nil {
		return *msg
	}
	return ""
}

// errStopped ends a vCPU's loop because another vCPU finished the guest.
var errStopped = errors.New("stopped")

func (m *machine) loop(i int) (*Result, error) {
	cpu := m.cpus[i]
	for {
		m.info.Stats.Exits = m.exits.Load()
		err := cpu.Run()
		m.exits.Add(1)
		if m.profile != nil {
			m.profile.sample(m, i)
		}
		if err != nil {
			if why := m.stopReason(); why != "" {
				m.mu.Lock()
				defer m.mu.Unlock()
				m.drain()
				return nil, m.crashCPU(cpu, why)
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
		return true, &CrashError{Msg: "guest halted with nothing left to wake it"}
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
		return true, &CrashError{Msg: "guest halted with nothing left to wake it: every thread is blocked with no timeout (a deadlock in the guest)"}
	case abi.PortRelease:
		if err := m.guest.Release(m.info.ReleaseAddr, m.info.ReleaseLen); err != nil {
			return true, &CrashError{Msg: fmt.Sprintf("guest asked to release bad memory: %v", err)}
		}
	case abi.PortFile:
		m.serveFile()
	case abi.PortFork:
		m.fork(cpu)
	case abi.PortNetKick:
		if n := m.nic.Load(); n != nil {
			n.kickExit()
		}
	case abi.PortMainReached:
		m.res.MainReached = time.Since(m.cfg.Started)
	}
	return false, nil
}

// serveFile performs the FileRequest at BootInfo.FileRequest.
func (m *machine) serveFile() {
	m.answer(func(mmu memory.Virtual, req *abi.FileRequest) bool {
		switch {
		case req.Op == abi.FileAppSpec:
			req.Result = m.serveAppSpec(mmu, req)
		case req.Op == abi.FileNetAttach:
			req.Result = m.attachNIC(mmu, req)
		case req.Op == abi.FileNotifyAttach:
			req.Result = m.attachNotify(req)
		case req.Op == abi.FileMapWindow:
			req.Result = m.mapWindow(req)
		case req.Op == abi.FileUnmapWindow:
			req.Result = fileservice.Errno(m.guest.UnmapWindow(req.Offset))
		case m.files == nil:
			return false
		default:
			req.Result = m.files.Serve(mmu, req)
		}
		return true
	})
}

// mapWindow serves FileMapWindow: Len bytes from Offset of the file under Handle, mapped
// into the file window, all within the file's pages (a page past its end would fault the
// vCPU).
func (m *machine) mapWindow(req *abi.FileRequest) int64 {
	if m.files == nil {
		return -int64(unix.ENODEV)
	}
	f, ok := m.files.Mappable(req.Handle)
	if !ok {
		return -int64(unix.ENODEV)
	}
	fi, err := f.Stat()
	if err != nil {
		return fileservice.Errno(err)
	}
	pages := (uint64(fi.Size()) + 4095) &^ 4095
	if req.Offset > pages || req.Len > pages-req.Offset || req.Offset > 1<<62 {
		return -int64(unix.EINVAL)
	}
	gpa, err := m.guest.MapWindow(f, int64(req.Offset), req.Len)
	if err != nil {
		return fileservice.Errno(err)
	}
	return int64(gpa)
}

// answer reads the FileRequest at BootInfo.FileRequest and has serve answer it, writing
// the request back if serve says so; one it cannot read is dropped.
func (m *machine) answer(serve func(memory.Virtual, *abi.FileRequest) bool) {
	mmu := m.guest.Virtual(boot.CR3(0))
	var req abi.FileRequest
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&req)), unsafe.Sizeof(req))
	addr := m.info.FileRequest
	if mmu.Read(addr, raw) == nil && serve(mmu, &req) {
		mmu.Write(addr, raw)
	}
}
