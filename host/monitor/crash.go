package monitor

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/host/monitor/boot"
	"github.com/pithvm/pith/host/monitor/kvm"
)

// exceptionNames names the x86 exception vectors, for crash reports.
var exceptionNames = map[uint64]string{
	0: "divide error", 1: "debug", 2: "NMI", 3: "breakpoint", 4: "overflow", 5: "bound range",
	6: "invalid opcode", 7: "device not available", 8: "double fault", 10: "invalid TSS",
	11: "segment not present", 12: "stack fault", 13: "general protection fault",
	14: "page fault", 16: "x87 floating-point error", 17: "alignment check", 18: "machine check",
	19: "SIMD floating-point error", 21: "control protection",
}

// crashReport describes the crash tier 0 reported (PortCrash) from the record it left in
// BootInfo.
func (m *machine) crashReport(kind abi.CrashKind) error {
	c := m.info.Crash
	r := c.Regs
	var what string
	switch kind {
	case abi.CrashOutOfMem:
		what = fmt.Sprintf("guest out of memory: raise -m (now %d MiB)", m.guest.Size()>>20)
		return &CrashError{Msg: what, OutOfMemory: true}
	case abi.CrashBadState:
		if c.Tier0 == 0 {
			return &CrashError{Msg: "guest kernel refused its boot information (kernel and monitor from different pith versions?)"}
		}
		return &CrashError{Msg: m.describe(fmt.Sprintf("tier 0 found its state inconsistent (detail %#x) on vCPU %d", c.Info, c.CPU), r.RIP, regsList(r))}
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
	return &CrashError{Msg: m.describe(what, r.RIP, append(regsList(r), [2]any{"fsbase", c.FSBase}))}
}

// crashCPU reports a crash that tier 0 could not report, from the vCPU's registers.
func (m *machine) crashCPU(cpu *kvm.VCPU, what string) error {
	r, err := cpu.Regs()
	if err != nil {
		return &CrashError{Msg: "guest crashed: " + what}
	}
	regs := [][2]any{
		{"rax", r.RAX}, {"rbx", r.RBX}, {"rcx", r.RCX}, {"rdx", r.RDX}, {"rsi", r.RSI}, {"rdi", r.RDI},
		{"rbp", r.RBP}, {"rsp", r.RSP}, {"r8", r.R8}, {"r9", r.R9}, {"r10", r.R10}, {"r11", r.R11},
		{"r12", r.R12}, {"r13", r.R13}, {"r14", r.R14}, {"r15", r.R15}, {"rflags", r.RFLAGS},
	}
	if s, err := cpu.Sregs(); err == nil {
		regs = append(regs, [2]any{"cs", uint64(s.CS.Selector)}, [2]any{"cr2", s.CR2}, [2]any{"cr3", s.CR3})
	}
	return &CrashError{Msg: m.describe(what, r.RIP, regs)}
}

// whereAll says where each vCPU of a guest stopped for not answering was, and who held
// tier 0's lock: such a guest is most often vCPUs waiting on each other. Every vCPU has
// left KVM_RUN.
func (m *machine) whereAll() string {
	var b strings.Builder
	for i, cpu := range m.cpus {
		r, err := cpu.Regs()
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "\n  vCPU %d at RIP %#x", i, r.RIP)
		if sym := m.kernel.Symbolize(r.RIP); sym != "" {
			fmt.Fprintf(&b, " in %s", sym)
		}
	}
	b.WriteString(m.threadWaits())
	if v, ok := m.kernelData(abi.Tier0LockSymbol, 4); ok {
		switch owner := binary.LittleEndian.Uint32(v); owner {
		case 0:
			b.WriteString("\n  tier 0's lock: free")
		default:
			fmt.Fprintf(&b, "\n  tier 0's lock: held by vCPU %d", owner-1)
		}
	}
	return b.String()
}

// threadWaits says what each of tier 0's threads waits for, from its records: a guest
// whose vCPUs all idle is most often a wake-up that never came.
func (m *machine) threadWaits() string {
	v, ok := m.kernelData(abi.Tier0LiveLimitSymbol, 4)
	if !ok {
		return ""
	}
	live := min(uint64(binary.LittleEndian.Uint32(v)), 256)
	all, ok := m.kernelData(abi.Tier0ThreadsSymbol, live*abi.Tier0ThreadSize)
	if !ok {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n  threads:")
	for i := range live {
		t := all[i*abi.Tier0ThreadSize : (i+1)*abi.Tier0ThreadSize]
		u32 := func(off int) uint32 { return binary.LittleEndian.Uint32(t[off:]) }
		u64 := func(off int) uint64 { return binary.LittleEndian.Uint64(t[off:]) }
		state := u32(abi.Tier0ThreadState)
		if state == 0 {
			continue
		}
		fmt.Fprintf(&b, " %d", int32(u32(abi.Tier0ThreadTID)))
		if u64(abi.Tier0ThreadApp) != 0 {
			b.WriteString("(app)")
		}
		switch {
		case state == 1:
			b.WriteString(" runnable")
		case u32(abi.Tier0ThreadWait) == 1:
			fmt.Fprintf(&b, " futex %#x", u64(abi.Tier0ThreadFutex))
		case u32(abi.Tier0ThreadWait) == 2:
			b.WriteString(" sleep")
		case u32(abi.Tier0ThreadWait) == 3:
			b.WriteString(" epoll")
		default:
			b.WriteString(" blocked")
		}
		if d := u64(abi.Tier0ThreadDeadline); d != 0 {
			fmt.Fprintf(&b, " (until TSC %d)", d)
		}
		b.WriteString(";")
	}
	for i := range m.cpus {
		if c, err := m.cpuRecord(i); err == nil {
			fmt.Fprintf(&b, "\n  vCPU %d idle since TSC %d, timer armed for %d (0: none)", i, atomic.LoadUint64(&c.IdleSince), atomic.LoadUint64(&c.IdleUntil))
		}
	}
	fmt.Fprintf(&b, "\n  the monitor watches %d things for the guest; its word that one happened: %d", atomic.LoadUint64(&m.info.HostWatches), atomic.LoadUint64(&m.info.HostReady))
	return b.String()
}

// kernelData is n bytes of guest memory at the kernel's symbol sym.
func (m *machine) kernelData(sym string, n uint64) ([]byte, bool) {
	addr, ok := m.kernel.Lookup(sym)
	if !ok {
		return nil, false
	}
	v, err := m.guest.Slice(addr-abi.PhysBase, n)
	return v, err == nil
}

// cpuRecord is vCPU i's record in guest memory (abi.CPU), which tier 0 writes.
func (m *machine) cpuRecord(i int) (*abi.CPU, error) {
	b, err := m.guest.Slice(boot.CPUBlock(i)+abi.PerCPUData, uint64(unsafe.Sizeof(abi.CPU{})))
	if err != nil {
		return nil, err
	}
	return (*abi.CPU)(unsafe.Pointer(&b[0])), nil
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
