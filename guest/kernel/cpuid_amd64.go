package kernel

import "unsafe"

// cpuid1EDX returns CPUID leaf 1's EDX (the feature bits Linux reports as AT_HWCAP).
func cpuid1EDX() uint32

// appPtr turns an app address into a pointer: the app shares tier 1's address space.
func appPtr(a uint64) unsafe.Pointer

// xcr0 returns XCR0, the state components XSAVE and XRSTOR handle (0 without XSAVE).
func xcr0() uint64
