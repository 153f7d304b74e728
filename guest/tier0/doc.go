// Package tier0 is the pith kernel's supervisor: the only privileged code in the guest.
//
// It boots the vCPU (switching it to native execution on kvm-pvm hosts), owns the page
// tables, the threads and their scheduler, time, futexes, the console and exit, and answers
// the Linux system calls that tier 1 (the kernel's own Go runtime, running in user mode)
// makes. Nothing here is ordinary Go; the rules, enforced by test/tier0check on the built
// kernel, are:
//
//   - Entry code is assembly: no Go runs before a stack, FS base and SSE state exist.
//   - Every Go function is //go:nosplit (there is no goroutine stack to grow), allocates
//     nothing, stores no Go pointers (a write barrier needs a P) and cannot panic: indexes
//     are masked or go through unsafe, and there is no division by a variable. So no
//     tier-0 function can reach mallocgc, newobject, gcWriteBarrier*, morestack* or a panic
//     helper.
//   - No //go:linkname into the runtime: the Linux system-call ABI is the contract with
//     tier 1, exactly as between Linux and a process.
//   - Tier 0 runs to completion with interrupts masked (the kvm-pvm vif byte, or RFLAGS.IF
//     on hardware KVM): a system call or trap saves the interrupted thread into its thread
//     record, is handled on the one tier-0 stack, and returns to whichever thread the
//     scheduler picks. Blocked threads hold no tier-0 stack.
//
// Privileged instructions cost microseconds on kvm-pvm (../shared/HOST.md,
// docs/kvm-pvm.md), so they stay off the hot paths: FS base switches with WRFSBASE, the timer is armed only when a
// deadline or a time slice needs it, and the vCPU idles with HLT.
package tier0

//go:generate go run gen_vectors.go
