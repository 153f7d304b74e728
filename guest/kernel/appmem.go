package kernel

import "unsafe"

// The app's memory, as the system-call handlers reach it. Every access is bounds-checked
// (appRange: the app's part of the address space, never tier 1's or the kernel's), and a
// fault on memory the app never mapped answers EFAULT (serve, catchAppFault): each helper
// reports false where the handler answers EFAULT.

// appSlice is app memory [addr, addr+n).
func appSlice(addr, n uint64) ([]byte, bool) {
	if !appRange(addr, n) {
		return nil, false
	}
	return appBytes(addr, n), true
}

// copyIn reads len(b) bytes of app memory at addr into b.
func copyIn(addr uint64, b []byte) bool {
	m, ok := appSlice(addr, uint64(len(b)))
	copy(b, m)
	return ok
}

// copyOut writes b to app memory at addr.
func copyOut(addr uint64, b []byte) bool {
	m, ok := appSlice(addr, uint64(len(b)))
	copy(m, b)
	return ok
}

// putApp writes v, a value of fixed size in Linux's layout, to app memory at addr.
func putApp[T any](addr uint64, v T) bool {
	if !appRange(addr, uint64(unsafe.Sizeof(v))) {
		return false
	}
	*(*T)(appPtr(addr)) = v
	return true
}

// getApp reads a value of fixed size from app memory at addr.
func getApp[T any](addr uint64) (v T, ok bool) {
	if !appRange(addr, uint64(unsafe.Sizeof(v))) {
		return v, false
	}
	return *(*T)(appPtr(addr)), true
}
