package kernel

import (
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
	"github.com/pithvm/pith/guest/x86"
)

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

// appPtr turns an app address into a pointer: the app shares tier 1's address space.
func appPtr(a uint64) unsafe.Pointer { return x86.Pointer(uintptr(a)) }

// catchAppFault, deferred, recovers from a fault on an address the app handed tier 1
// (task goroutines run with debug.SetPanicOnFault) and runs then, if not nil; any other
// panic goes on. appRange checks bounds only, and the app may name memory it never
// mapped; tier 1's own memory is always mapped.
func catchAppFault(then func()) {
	r := recover()
	if r == nil {
		return
	}
	if _, fault := r.(interface{ Addr() uintptr }); !fault {
		panic(r)
	}
	if then != nil {
		then()
	}
}

// appRange checks that [addr, addr+n) lies in the app's part of the address space, where
// tier 0 backs mapped memory on first touch. Whether it is mapped is found by touching
// it: a fault there answers EFAULT (serve).
func appRange(addr, n uint64) bool {
	if n == 0 {
		return true
	}
	return addr+n >= addr && addr >= abi.LowMapEnd && addr+n <= abi.UserVAEnd &&
		(addr >= abi.PhysBase+abi.PhysSpan || addr+n <= abi.PhysBase)
}

// appBytes is app memory [addr, addr+n): the app shares tier 1's address space. Callers
// validate user pointers with appRange first.
func appBytes(addr, n uint64) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(appPtr(addr)), n)
}

// appIovecs reads an array of cnt struct iovec (base, length) from app memory: EINVAL
// past IOV_MAX, EFAULT where it is not the app's.
func appIovecs(iov, cnt uint64) ([][2]uint64, int64) {
	if cnt > 1024 { // IOV_MAX
		return nil, -linux.EINVAL
	}
	vecs := make([][2]uint64, cnt)
	if !copyIn(iov, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(vecs))), 16*cnt)) {
		return nil, -linux.EFAULT
	}
	return vecs, 0
}
