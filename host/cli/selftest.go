package cli

import (
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/host/monitor"
)

type selftestOptions struct {
	machine machineFlags
	inject  string
	only    string
	timing  bool
}

func newSelftestCommand() *cobra.Command {
	var o selftestOptions
	c := &cobra.Command{
		Use:   "selftest",
		Short: "Boot the guest kernel and check its Go runtime: goroutines, GC, timers, preemption",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return runSelftest(&o) },
	}
	o.machine.register(c)
	c.Flags().StringVar(&o.inject, "inject-failure", "", "make the named check fail (to test the failure path)")
	c.Flags().StringVar(&o.only, "only", "", "run only the named check")
	c.Flags().BoolVar(&o.timing, "timing", false, "print boot timing")
	return c
}

// newHelloCommand boots the kernel's hello mode: it prints hello and exits. bench/boot
// times it against a native exec of a Go hello world.
func newHelloCommand() *cobra.Command {
	var o selftestOptions
	c := &cobra.Command{
		Use:    "hello",
		Short:  "Boot the guest kernel, print hello from tier 1 and exit (for boot benchmarks)",
		Args:   cobra.NoArgs,
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			cfg, err := o.machine.config()
			if err != nil {
				return err
			}
			cfg.Args = []string{"pith-kernel", "hello"}
			cfg.Timing = o.timing
			return runGuest(cfg, o.timing)
		},
	}
	o.machine.register(c)
	c.Flags().BoolVar(&o.timing, "timing", false, "print boot timing")
	return c
}

func runSelftest(o *selftestOptions) error {
	cfg, err := o.machine.config()
	if err != nil {
		return err
	}
	cfg.Args = []string{"pith-kernel", "selftest", fmt.Sprintf("-memory=%d", cfg.Memory), fmt.Sprintf("-cpus=%d", cfg.CPUs)}
	if o.inject != "" {
		cfg.Args = append(cfg.Args, "-inject-failure="+o.inject)
	}
	if o.only != "" {
		cfg.Args = append(cfg.Args, "-only="+o.only)
	}
	cfg.Timing = o.timing
	return runGuest(cfg, o.timing)
}

// runGuest runs a guest and turns its exit status into pith's.
func runGuest(cfg monitor.Config, timing bool) error {
	return runGuestReporting(cfg, timing, "")
}

// runGuestReporting is runGuest that also writes how the guest ended to the file report,
// if named (Report).
func runGuestReporting(cfg monitor.Config, timing bool, report string) error {
	res, err := monitor.Run(cfg)
	if report != "" {
		if werr := writeReport(report, res, err); werr != nil {
			fmt.Fprintf(os.Stderr, "pith: --report %s: %v\n", report, werr)
		}
	}
	if err != nil {
		return err
	}
	if timing {
		st := res.Stats
		fmt.Fprintf(os.Stderr, "pith: timing: monitor ready %v, tier-1 main %v, exit %v; %d exits, %d traps (%d system calls, %d of them the app's, %d page faults, %d exceptions, %d interrupts); guest memory peak %d MiB; %d vCPUs online, %d wake-up IPIs sent, %d taken by a thread\n",
			res.Booted, res.MainReached, res.Exited, res.Exits,
			st.Syscalls+st.PageFaults+st.Exceptions+st.Interrupts, st.Syscalls, st.AppSyscalls, st.PageFaults, st.Exceptions, st.Interrupts,
			st.FramesPeak*4096>>20, st.CPUsOnline, st.IPIsSent, st.Wakeups)
		if n := res.NIC; n.FramesSent+n.FramesReceived > 0 {
			fmt.Fprintf(os.Stderr, "pith: network: %d frames sent, %d received (%d dropped: ring full); %d notifications from the guest through the ioeventfd, %d through exits; %d interrupts to the guest; the transmit ring found full %d times\n",
				n.FramesSent, n.FramesReceived, n.Dropped, n.Kicks, n.KickExits, n.Interrupts, n.TransmitFull)
		}
	}
	if res.Signal != 0 && cfg.Root != "" || res.Signal == int(unix.SIGPIPE) {
		dieOf(syscall.Signal(res.Signal))
	}
	if res.ExitCode != 0 {
		return statusError(res.ExitCode)
	}
	return nil
}

// dieOf ends pith by signal sig, without a core dump. A program started inside a guest
// runs as a pith of its own, which dies of the signal its program died of: that is how
// the guest that waits for it learns of a death by signal, where an exit with 128+sig
// would be an exit. Any pith whose app died of SIGPIPE dies of it too, as the end of a
// pipeline whose reader left (a warm run's client as well).
func dieOf(sig syscall.Signal) {
	unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0) // a core_pattern pipe ignores RLIMIT_CORE
	// struct sigaction: handler SIG_DFL, no flags, no restorer, no mask.
	var dfl [4]uint64
	unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0)
	set := uint64(1) << (sig - 1)
	unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_UNBLOCK, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0)
	unix.Tgkill(unix.Getpid(), unix.Gettid(), sig)
	time.Sleep(100 * time.Millisecond) // a signal whose default is not to end (it never is here)
}
