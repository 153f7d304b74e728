// Package cli implements the pith command line: one file per command, Docker's grammar.
package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pithvm/pith/host/monitor"
)

// Exit statuses of pith's own failures, as Docker uses them.
const (
	exitPithError = 125 // pith could not run the guest, or the guest crashed
)

// started is when this process began: $PITH_T0 (Unix nanoseconds, set by a benchmark
// harness just before exec) if given, else package initialisation.
var started = func() time.Time {
	if v, err := strconv.ParseInt(os.Getenv("PITH_T0"), 10, 64); err == nil {
		return time.Unix(0, v)
	}
	return time.Now()
}()

// Main runs the pith command with args and returns the process exit status.
func Main(args []string) int {
	root := &cobra.Command{
		Use:           "pith",
		Short:         "Run programs as unikernels: single-purpose VMs that boot in milliseconds",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCommand(), newSelftestCommand(), newHelloCommand(), newDoctorCommand(), newWarmServeCommand(),
		newMonitorCommand(), newPsCommand(), newLogsCommand(), newStopCommand(), newKillCommand(), newStartCommand(),
		newRestartCommand(), newWaitCommand(), newRmCommand(), newInspectCommand(), newStatsCommand())
	root.AddCommand(newBuildCommand(), newImagesCommand(), newTagCommand(), newRmiCommand(), newSaveCommand(),
		newLoadCommand(), newImageCommand(), newPushCommand(), newPullCommand())
	root.SetArgs(args)
	return exitStatus(root.Execute())
}

// exitStatus is pith's exit status for how a command ended; an error is printed.
func exitStatus(err error) int {
	var st statusError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &st):
		return int(st)
	default:
		fmt.Fprintf(os.Stderr, "pith: %v\n", err)
		return exitPithError
	}
}

// statusError carries a guest's exit status out of a command without printing anything.
type statusError int

func (s statusError) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

// kernelPath finds the guest kernel: $PITH_KERNEL, else pith-kernel beside this binary.
func kernelPath() string {
	if p := os.Getenv("PITH_KERNEL"); p != "" {
		return p
	}
	exe, err := os.Executable()
	if err != nil {
		return "pith-kernel"
	}
	return filepath.Join(filepath.Dir(exe), "pith-kernel")
}

// machineFlags are the VM-shaping flags shared by commands that boot a guest.
type machineFlags struct {
	memory   string
	cpus     int
	standard bool
	env      []string
}

func (f *machineFlags) register(c *cobra.Command) {
	c.Flags().StringVarP(&f.memory, "memory", "m", "256m", "guest memory (k, m, g suffixes)")
	c.Flags().IntVar(&f.cpus, "cpus", 1, "number of vCPUs")
	c.Flags().BoolVar(&f.standard, "x86-standard", false, "never use kvm-pvm's native switch (slow here; for testing the hardware-KVM path)")
	c.Flags().StringArrayVarP(&f.env, "env", "e", nil, "set an environment variable in the guest (KEY=VALUE)")
}

func (f *machineFlags) config() (monitor.Config, error) {
	mem, err := parseSize(f.memory)
	if err != nil {
		return monitor.Config{}, err
	}
	mode := monitor.ModeAuto
	if f.standard {
		mode = monitor.ModeStandard
	}
	var deadline time.Duration
	if d := os.Getenv("PITH_DEADLINE"); d != "" {
		if deadline, err = time.ParseDuration(d); err != nil {
			return monitor.Config{}, fmt.Errorf("PITH_DEADLINE=%q: %v", d, err)
		}
	}
	for _, e := range f.env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return monitor.Config{}, fmt.Errorf("-e %q: use KEY=VALUE", e)
		}
	}
	return monitor.Config{Kernel: kernelPath(), Memory: mem, CPUs: f.cpus, Mode: mode, Started: started,
		Deadline: deadline, DeferTeardown: true, Env: f.env, Profile: os.Getenv("PITH_GUESTPROFILE")}, nil
}

// parseSize reads sizes like 512m, 2g or 1048576 (bytes), rounded up to 2 MiB.
func parseSize(s string) (uint64, error) {
	var n uint64
	var unit string
	if _, err := fmt.Sscanf(s, "%d%s", &n, &unit); err != nil && unit == "" {
		if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
			return 0, fmt.Errorf("bad memory size %q: use a number with an optional k, m or g suffix", s)
		}
	}
	switch unit {
	case "", "b":
	case "k", "K", "kb", "KB":
		n <<= 10
	case "m", "M", "mb", "MB":
		n <<= 20
	case "g", "G", "gb", "GB":
		n <<= 30
	default:
		return 0, fmt.Errorf("bad memory size %q: use a number with an optional k, m or g suffix", s)
	}
	const min = 32 << 20
	if n < min {
		return 0, fmt.Errorf("memory size %q is below the 32 MiB a guest needs", s)
	}
	return (n + (2<<20 - 1)) &^ (2<<20 - 1), nil
}
