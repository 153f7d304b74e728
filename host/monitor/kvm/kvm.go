// Package kvm wraps the Linux KVM ioctls the pith monitor uses (include/uapi/linux/kvm.h).
package kvm

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl request numbers (x86-64), from include/uapi/linux/kvm.h.
const (
	kvmGetAPIVersion       = 0xae00
	kvmCreateVM            = 0xae01
	kvmCheckExtension      = 0xae03
	kvmGetVCPUMmapSize     = 0xae04
	kvmGetSupportedCPUID   = 0xc008ae05
	kvmCreateVCPU          = 0xae41
	kvmSetUserMemoryRegion = 0x4020ae46
	kvmSetTSSAddr          = 0xae47
	kvmCreateIRQChip       = 0xae60
	kvmRun                 = 0xae80
	kvmGetRegs             = 0x8090ae81
	kvmSetRegs             = 0x4090ae82
	kvmGetSregs            = 0x8138ae83
	kvmSetSregs            = 0x4138ae84
	kvmGetMSRs             = 0xc008ae88
	kvmSetMSRs             = 0x4008ae89
	kvmSetCPUID2           = 0x4008ae90
	kvmGetTSCKHz           = 0xaea3
	kvmSetXCRs             = 0x4188aea7

	apiVersion = 12
)

// ErrNoKVM is returned when /dev/kvm does not exist.
var ErrNoKVM = errors.New("/dev/kvm does not exist: this machine has no KVM (enable virtualization, or load kvm_intel/kvm_amd)")

// System is an open /dev/kvm.
type System struct {
	fd int
}

// Open opens /dev/kvm and checks the API version.
func Open() (*System, error) {
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, ErrNoKVM
	case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
		return nil, fmt.Errorf("/dev/kvm: permission denied: add this user to the group owning /dev/kvm (usually kvm) or run as root")
	case err != nil:
		return nil, fmt.Errorf("open /dev/kvm: %w", err)
	}
	v, err := ioctl(fd, kvmGetAPIVersion, 0)
	if err != nil || v != apiVersion {
		unix.Close(fd)
		return nil, fmt.Errorf("/dev/kvm speaks API version %d, pith needs %d", v, apiVersion)
	}
	return &System{fd: fd}, nil
}

// Close closes /dev/kvm.
func (s *System) Close() error { return unix.Close(s.fd) }

// CPUIDEntry mirrors struct kvm_cpuid_entry2.
type CPUIDEntry struct {
	Function, Index, Flags uint32
	EAX, EBX, ECX, EDX     uint32
	_                      [3]uint32
}

// Capabilities pith asks KVM_CHECK_EXTENSION about (include/uapi/linux/kvm.h).
const (
	CapIRQChip          = 0
	CapTSCDeadlineTimer = 72
)

// CheckExtension returns KVM_CHECK_EXTENSION's answer for capability c: 0 when absent.
func (s *System) CheckExtension(c int) int {
	v, err := ioctl(s.fd, kvmCheckExtension, uintptr(c))
	if err != nil {
		return 0
	}
	return int(v)
}

// SupportedCPUID returns KVM_GET_SUPPORTED_CPUID.
func (s *System) SupportedCPUID() ([]CPUIDEntry, error) {
	var buf struct {
		nent, _ uint32
		entries [256]CPUIDEntry
	}
	buf.nent = uint32(len(buf.entries))
	if _, err := ioctlPtr(s.fd, kvmGetSupportedCPUID, unsafe.Pointer(&buf)); err != nil {
		return nil, fmt.Errorf("KVM_GET_SUPPORTED_CPUID: %w", err)
	}
	return append([]CPUIDEntry(nil), buf.entries[:buf.nent]...), nil
}

// VCPUMmapSize is the size of a vCPU's kvm_run mapping.
func (s *System) VCPUMmapSize() (int, error) {
	n, err := ioctl(s.fd, kvmGetVCPUMmapSize, 0)
	return int(n), err
}

// VM is a KVM virtual machine.
type VM struct {
	sys *System
	fd  int
}

// CreateVM creates a VM.
func (s *System) CreateVM() (*VM, error) {
	fd, err := ioctl(s.fd, kvmCreateVM, 0)
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VM: %w", err)
	}
	return &VM{sys: s, fd: int(fd)}, nil
}

// Close closes the VM.
func (vm *VM) Close() error { return unix.Close(vm.fd) }

// userspaceMemoryRegion mirrors struct kvm_userspace_memory_region.
type userspaceMemoryRegion struct {
	slot, flags   uint32
	guestPhysAddr uint64
	memorySize    uint64
	userspaceAddr uint64
}

// SetMemory maps host memory mem at guest-physical gpa in slot.
func (vm *VM) SetMemory(slot uint32, gpa uint64, mem []byte) error {
	r := userspaceMemoryRegion{slot: slot, guestPhysAddr: gpa, memorySize: uint64(len(mem)),
		userspaceAddr: uint64(uintptr(unsafe.Pointer(&mem[0])))}
	if _, err := ioctlPtr(vm.fd, kvmSetUserMemoryRegion, unsafe.Pointer(&r)); err != nil {
		return fmt.Errorf("KVM_SET_USER_MEMORY_REGION: %w", err)
	}
	return nil
}

// SetTSSAddr places the three pages Intel VT-x needs for real mode; other hosts ignore it.
func (vm *VM) SetTSSAddr(gpa uint64) error {
	_, err := ioctl(vm.fd, kvmSetTSSAddr, uintptr(gpa))
	return err
}

// CreateIRQChip creates the in-kernel interrupt controller (the local APIC timer lives there).
func (vm *VM) CreateIRQChip() error {
	if _, err := ioctl(vm.fd, kvmCreateIRQChip, 0); err != nil {
		return fmt.Errorf("KVM_CREATE_IRQCHIP: %w", err)
	}
	return nil
}

// VCPU is one virtual CPU and its shared kvm_run page.
type VCPU struct {
	fd  int
	run []byte
}

// CreateVCPU creates vCPU id.
func (vm *VM) CreateVCPU(id int) (*VCPU, error) {
	fd, err := ioctl(vm.fd, kvmCreateVCPU, uintptr(id))
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VCPU: %w", err)
	}
	size, err := vm.sys.VCPUMmapSize()
	if err != nil {
		unix.Close(int(fd))
		return nil, fmt.Errorf("KVM_GET_VCPU_MMAP_SIZE: %w", err)
	}
	run, err := unix.Mmap(int(fd), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(int(fd))
		return nil, fmt.Errorf("mmap kvm_run: %w", err)
	}
	return &VCPU{fd: int(fd), run: run}, nil
}

// Close releases the vCPU.
func (c *VCPU) Close() error {
	unix.Munmap(c.run)
	return unix.Close(c.fd)
}

// Run enters the guest until the next exit. EINTR (a signal) is returned as is.
func (c *VCPU) Run() error {
	_, err := ioctl(c.fd, kvmRun, 0)
	return err
}

// SetImmediateExit makes the next (or current) Run return EINTR at once.
func (c *VCPU) SetImmediateExit(v bool) {
	b := byte(0)
	if v {
		b = 1
	}
	c.run[1] = b
}

// SetCPUID sets the CPUID entries the guest sees.
func (c *VCPU) SetCPUID(entries []CPUIDEntry) error {
	buf := make([]byte, 8+len(entries)*int(unsafe.Sizeof(CPUIDEntry{})))
	*(*uint32)(unsafe.Pointer(&buf[0])) = uint32(len(entries))
	copy(unsafe.Slice((*CPUIDEntry)(unsafe.Pointer(&buf[8])), len(entries)), entries)
	if _, err := ioctlPtr(c.fd, kvmSetCPUID2, unsafe.Pointer(&buf[0])); err != nil {
		return fmt.Errorf("KVM_SET_CPUID2: %w", err)
	}
	return nil
}

// TSCKHz returns the vCPU's TSC frequency.
func (c *VCPU) TSCKHz() (uint64, error) {
	v, err := ioctl(c.fd, kvmGetTSCKHz, 0)
	return uint64(v), err
}

// Regs mirrors struct kvm_regs.
type Regs struct {
	RAX, RBX, RCX, RDX, RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11, R12, R13, R14, R15   uint64
	RIP, RFLAGS                            uint64
}

// Segment mirrors struct kvm_segment.
type Segment struct {
	Base                           uint64
	Limit                          uint32
	Selector                       uint16
	Type                           uint8
	Present, DPL, DB, S, L, G, AVL uint8
	Unusable                       uint8
	_                              uint8
}

// DTable mirrors struct kvm_dtable.
type DTable struct {
	Base  uint64
	Limit uint16
	_     [3]uint16
}

// Sregs mirrors struct kvm_sregs.
type Sregs struct {
	CS, DS, ES, FS, GS, SS  Segment
	TR, LDT                 Segment
	GDT, IDT                DTable
	CR0, CR2, CR3, CR4, CR8 uint64
	EFER                    uint64
	APICBase                uint64
	InterruptBitmap         [4]uint64
}

// Regs reads the general registers.
func (c *VCPU) Regs() (Regs, error) {
	var r Regs
	_, err := ioctlPtr(c.fd, kvmGetRegs, unsafe.Pointer(&r))
	return r, err
}

// SetRegs writes the general registers.
func (c *VCPU) SetRegs(r *Regs) error {
	if _, err := ioctlPtr(c.fd, kvmSetRegs, unsafe.Pointer(r)); err != nil {
		return fmt.Errorf("KVM_SET_REGS: %w", err)
	}
	return nil
}

// Sregs reads the special registers.
func (c *VCPU) Sregs() (Sregs, error) {
	var s Sregs
	_, err := ioctlPtr(c.fd, kvmGetSregs, unsafe.Pointer(&s))
	return s, err
}

// SetSregs writes the special registers.
func (c *VCPU) SetSregs(s *Sregs) error {
	if _, err := ioctlPtr(c.fd, kvmSetSregs, unsafe.Pointer(s)); err != nil {
		return fmt.Errorf("KVM_SET_SREGS: %w", err)
	}
	return nil
}

// MSR is one model-specific register value.
type MSR struct {
	Index uint32
	_     uint32
	Data  uint64
}

// SetMSRs writes MSRs; it fails unless all were accepted.
func (c *VCPU) SetMSRs(msrs []MSR) error {
	buf := make([]byte, 8+16*len(msrs))
	*(*uint32)(unsafe.Pointer(&buf[0])) = uint32(len(msrs))
	copy(unsafe.Slice((*MSR)(unsafe.Pointer(&buf[8])), len(msrs)), msrs)
	n, err := ioctlPtr(c.fd, kvmSetMSRs, unsafe.Pointer(&buf[0]))
	if err != nil {
		return fmt.Errorf("KVM_SET_MSRS: %w", err)
	}
	if int(n) != len(msrs) {
		return fmt.Errorf("KVM_SET_MSRS: MSR %#x refused", msrs[n].Index)
	}
	return nil
}

// GetMSR reads one MSR.
func (c *VCPU) GetMSR(index uint32) (uint64, error) {
	var buf struct {
		n, _ uint32
		m    MSR
	}
	buf.n = 1
	buf.m.Index = index
	n, err := ioctlPtr(c.fd, kvmGetMSRs, unsafe.Pointer(&buf))
	if err != nil {
		return 0, err
	}
	if n != 1 {
		return 0, fmt.Errorf("MSR %#x not readable", index)
	}
	return buf.m.Data, nil
}

// SetXCR0 sets the guest's XCR0 (the vector state XSAVE manages).
func (c *VCPU) SetXCR0(v uint64) error {
	var buf struct {
		n, flags uint32
		xcrs     [16]struct {
			xcr, _ uint32
			value  uint64
		}
		_ [16]uint64
	}
	buf.n = 1
	buf.xcrs[0].value = v
	if _, err := ioctlPtr(c.fd, kvmSetXCRs, unsafe.Pointer(&buf)); err != nil {
		return fmt.Errorf("KVM_SET_XCRS: %w", err)
	}
	return nil
}

func ioctl(fd int, req, arg uintptr) (uintptr, error) {
	r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
	if e != 0 {
		return 0, e
	}
	return r, nil
}

// ioctlPtr is ioctl with an argument in Go memory. The pointer stays a pointer until the
// system call itself: converted to a uintptr by the caller, it would keep a stack
// object neither alive nor in place, and a stack that grows on the way moves the object
// (measured: KVM_GET_SUPPORTED_CPUID filled the old stack, and a warm server found
// no XSAVE in the zeroed copy it read).
func ioctlPtr(fd int, req uintptr, arg unsafe.Pointer) (uintptr, error) {
	r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if e != 0 {
		return 0, e
	}
	return r, nil
}

// Exists reports whether /dev/kvm is present (for tests that must say why they skip).
func Exists() bool {
	_, err := os.Stat("/dev/kvm")
	return err == nil
}

// FPU mirrors struct kvm_fpu.
type FPU struct {
	FPR        [8][16]byte
	FCW, FSW   uint16
	FTWX, _    uint8
	LastOpcode uint16
	LastIP     uint64
	LastDP     uint64
	XMM        [16][16]byte
	MXCSR      uint32
	_          uint32
}

const (
	kvmGetFPU   = 0x81a0ae8c
	kvmSetFPU   = 0x41a0ae8d
	kvmGetXSave = 0x9000aea4
	kvmSetXSave = 0x5000aea5
)

// FPU reads the x87/SSE state.
func (c *VCPU) FPU() (*FPU, error) {
	var f FPU
	if _, err := ioctlPtr(c.fd, kvmGetFPU, unsafe.Pointer(&f)); err != nil {
		return nil, fmt.Errorf("KVM_GET_FPU: %w", err)
	}
	return &f, nil
}

// SetFPU writes the x87/SSE state.
func (c *VCPU) SetFPU(f *FPU) error {
	if _, err := ioctlPtr(c.fd, kvmSetFPU, unsafe.Pointer(f)); err != nil {
		return fmt.Errorf("KVM_SET_FPU: %w", err)
	}
	return nil
}

// XSave reads the vector state in the standard XSAVE format (struct kvm_xsave).
func (c *VCPU) XSave() (*[4096]byte, error) {
	var b [4096]byte
	if _, err := ioctlPtr(c.fd, kvmGetXSave, unsafe.Pointer(&b)); err != nil {
		return nil, fmt.Errorf("KVM_GET_XSAVE: %w", err)
	}
	return &b, nil
}

// SetXSave writes the vector state from the standard XSAVE format.
func (c *VCPU) SetXSave(b *[4096]byte) error {
	if _, err := ioctlPtr(c.fd, kvmSetXSave, unsafe.Pointer(b)); err != nil {
		return fmt.Errorf("KVM_SET_XSAVE: %w", err)
	}
	return nil
}

// FD is the VM's file descriptor, for handing the VM to another process.
func (vm *VM) FD() int { return vm.fd }

// FD is the vCPU's file descriptor, for handing the vCPU to another process.
func (c *VCPU) FD() int { return c.fd }

const kvmSetMPState = 0x4004ae99

// SetRunnable marks the vCPU runnable. With an in-kernel irqchip KVM starts every vCPU but
// the first waiting for an INIT/SIPI sequence; pith sets all their state itself instead.
func (c *VCPU) SetRunnable() error {
	state := uint32(0) // KVM_MP_STATE_RUNNABLE
	if _, err := ioctlPtr(c.fd, kvmSetMPState, unsafe.Pointer(&state)); err != nil {
		return fmt.Errorf("KVM_SET_MP_STATE: %w", err)
	}
	return nil
}

const kvmSignalMSI = 0x4020aea5

// SignalMSI injects a message-signalled interrupt: vector to the local APIC apicID.
func (vm *VM) SignalMSI(apicID uint32, vector uint32) error {
	msi := struct {
		addressLo, addressHi, data, flags uint32
		_                                 [16]byte
	}{addressLo: 0xfee00000 | apicID<<12, data: vector}
	if _, err := ioctlPtr(vm.fd, kvmSignalMSI, unsafe.Pointer(&msi)); err != nil {
		return fmt.Errorf("KVM_SIGNAL_MSI: %w", err)
	}
	return nil
}

// kvmIOEventFD is KVM_IOEVENTFD; ioeventfdPIO its flag for an I/O port (not MMIO).
const (
	kvmIOEventFD = 0x4040ae79
	ioeventfdPIO = 1 << 1
)

// IOEventFD turns the guest's 4-byte writes to port into counts on the eventfd fd,
// handled in the host kernel: the vCPU goes on at once instead of exiting to the
// monitor (an exit costs ten times as much on kvm-pvm; see HOST.md).
func (vm *VM) IOEventFD(port uint16, fd int) error {
	req := struct {
		datamatch uint64
		addr      uint64
		len       uint32
		fd        int32
		flags     uint32
		_         [36]byte
	}{addr: uint64(port), len: 4, fd: int32(fd), flags: ioeventfdPIO}
	if _, err := ioctlPtr(vm.fd, kvmIOEventFD, unsafe.Pointer(&req)); err != nil {
		return fmt.Errorf("KVM_IOEVENTFD: %w", err)
	}
	return nil
}
