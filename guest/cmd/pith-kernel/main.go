// Command pith-kernel is the pith guest kernel: tier 0 (package tier0) is linked in as the
// ELF entry point, and this program's own Go runtime and main are tier 1.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/abi/fdspec"
	"github.com/pithvm/pith/guest/kernel"
	"github.com/pithvm/pith/guest/selftest"
	_ "github.com/pithvm/pith/guest/tier0" // the supervisor, entered through the ELF entry
)

func main() {
	syscall.RawSyscall(abi.SysPithMainReached, 0, 0, 0)
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "pith-kernel: no mode given (selftest, hello)")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "selftest":
		os.Exit(runSelftest(os.Args[2:]))
	case "run":
		os.Exit(runApp())
	case "hello":
		fmt.Println("hello") // the guest side of bench/boot's comparison with a native hello
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "pith-kernel: unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}

func runSelftest(args []string) int {
	fs := flag.NewFlagSet("selftest", flag.ContinueOnError)
	var c selftest.Config
	fs.Uint64Var(&c.Memory, "memory", 0, "guest memory in bytes")
	fs.IntVar(&c.CPUs, "cpus", 0, "expected vCPUs")
	fs.StringVar(&c.Inject, "inject-failure", "", "check to fail on purpose")
	fs.StringVar(&c.Only, "only", "", "run only this check")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c.Stats = stats
	switch c.Inject {
	case "tier0-fault":
		// Tier 0 reads an unmapped address: the monitor must report a tier-0 crash.
		syscall.RawSyscall(abi.SysPithFault, 0x10, 0, 0)
	case "oom":
		// Keep allocating: the guest must die with an out-of-memory report, not hang.
		var keep [][]byte
		for {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
	case "tier1-fault":
		// A fault tier 1 cannot take (SIGSEGV blocked): the guest dies with a crash report.
		signal.Ignore() // keep the runtime from unblocking it
		var set uint64 = 1 << (syscall.SIGSEGV - 1)
		syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, 0, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0)
		var p *[4]int
		p[3] = 1
	}
	if !selftest.Run(os.Stdout, c) {
		return 1
	}
	return 0
}

// physPtr is where tier 1 reads guest-physical memory: the physmap.
//
//go:nocheckptr
func physPtr(pa uint64) unsafe.Pointer {
	return unsafe.Add(unsafe.Pointer(nil), abi.PhysBase+pa) //nolint:govet // tier 1 owns the address space
}

// stats asks tier 0 for its trap counters and the monitor's exit count.
func stats() (traps, exits uint64, ok bool) {
	var s abi.Stats
	if _, _, e := syscall.RawSyscall(abi.SysPithStats, uintptr(unsafe.Pointer(&s)), 0, 0); e != 0 {
		return 0, 0, false
	}
	return s.Syscalls + s.Exceptions + s.Interrupts + s.PageFaults, s.Exits, true
}

// runApp loads the app the monitor mapped into guest memory and runs it. Its arguments
// and environment come from the monitor (kernel.AppSpec), once it has them:
// --app-addr=PA --app-size=N [--cwd=DIR] [--exe=PATH] [--trace] [--fast-calls=SITES] [--fd=SPEC]... -- ARGV...
// A warm VM (abi.FlagPreload) loads the app and touches its code first, while it waits.
func runApp() int {
	bi := (*abi.BootInfo)(physPtr(abi.BootInfoAddr))
	var pre *kernel.Image
	if bi.Flags&abi.FlagPreload != 0 {
		im, err := kernel.Load(unsafe.Slice((*byte)(physPtr(bi.AppAddr)), bi.AppSize))
		if err != nil {
			fmt.Fprintf(os.Stderr, "pith: %v\n", err)
			return 126
		}
		im.Prefault()
		kernel.PrefaultKernel()
		pre = im
	}
	args, env, err := kernel.AppSpec()
	if err == syscall.ECANCELED {
		return 0 // a warm VM that was never given its run
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pith-kernel: getting the app from the monitor: %v\n", err)
		return 125
	}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	addr := fs.Uint64("app-addr", 0, "guest-physical address of the app file")
	size := fs.Uint64("app-size", 0, "size of the app file")
	cwd := fs.String("cwd", "/", "the app's working directory")
	exe := fs.String("exe", "", "the app's path as /proc/self/exe names it (default: argv[0])")
	fs.BoolVar(&kernel.Trace, "trace", false, "print each app system call on stderr")
	fastCalls := fs.String("fast-calls", "", "system-call sites to rewrite (KIND@VADDR,...: kernel.Image.RewriteSyscalls)")
	var inherited []kernel.InheritedFD
	fs.Func("fd", "an inherited descriptor, a file or pipe: FD:KIND:HANDLE:FLAGS:HEXPATH (repeated)", func(v string) error {
		var nums [4]uint64
		path, ok := fdspec.Parse(v, nums[:])
		if !ok || nums[0] >= 1<<20 {
			return fmt.Errorf("--fd=%s: not FD:KIND:HANDLE:FLAGS:HEXPATH", v)
		}
		in := kernel.InheritedFD{FD: int(nums[0]), Kind: nums[1], Handle: nums[2], Flags: nums[3], Path: path}
		inherited = append(inherited, in)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return 125
	}
	argv := fs.Args()
	if *size == 0 || len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "pith-kernel: run needs --app-addr, --app-size and the app's argv")
		return 125
	}
	im := pre
	if im == nil {
		if im, err = kernel.Load(unsafe.Slice((*byte)(physPtr(*addr)), *size)); err != nil {
			fmt.Fprintf(os.Stderr, "pith: %s: %v\n", argv[0], err)
			return 126
		}
	}
	if !kernel.Trace {
		im.RewriteSyscalls(*fastCalls) // --trace shows every call, so none may skip tier 1
	}
	err = im.Run(argv, env, *cwd, *exe, inherited)
	fmt.Fprintf(os.Stderr, "pith: %s: %v\n", argv[0], err)
	return 126
}
