// Package kernel is tier 1's Linux personality: it loads a static x86-64 Linux executable
// into the guest's address space and runs it, serving its system calls in ordinary Go.
//
// Each app thread is a Task: a goroutine locked to its own OS thread (a tier-0 thread)
// that loops on RUN_APP. Tier 0 runs the app's code on that thread until it makes a system
// call or takes an exception, then hands its registers back here. Calls whose meaning is
// the same for the app as for tier 1 (memory, futexes, clocks, sleeps) are passed through
// to tier 0 unchanged: there is one address space. Everything that is per process or per
// thread in Linux (signal dispositions and masks, thread creation and exit, file
// descriptors, FS base) is kept here for the app.
package kernel
