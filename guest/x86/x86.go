// Package x86 holds the instructions both guest tiers need that Go cannot write: CPUID,
// XGETBV and an address taken as a pointer. It depends on nothing: tier 0 may use it.
package x86

import "unsafe"

// CPUID returns the registers CPUID leaves for leaf and subleaf sub. Under KVM every
// CPUID exits to the monitor: callers read it once, at boot.
func CPUID(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

// XCR0 returns the state components XSAVE and XRSTOR handle. The caller checks first that
// CR4.OSXSAVE is set (CPUID leaf 1, ECX bit 27): XGETBV faults otherwise.
func XCR0() uint64

// Pointer turns an address into a pointer, for addresses the caller has checked: the
// guest owns its address space, and go vet would flag the same conversion written in Go.
func Pointer(a uintptr) unsafe.Pointer

// OSXSAVE is CPUID leaf 1's ECX bit saying XGETBV may be used.
const OSXSAVE = 1 << 27
