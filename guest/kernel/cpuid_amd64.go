package kernel

import "unsafe"

// cpuid1EDX returns CPUID leaf 1's EDX (the feature bits Linux reports as AT_HWCAP).
func cpuid1EDX() uint32

// appPtr turns an app address into a pointer: the app shares tier 1's address space.
func appPtr(a uint64) unsafe.Pointer
