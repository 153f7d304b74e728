package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pithvm/pith/host/instance"
)

func newStatsCommand() *cobra.Command {
	var noStream bool
	c := &cobra.Command{
		Use:   "stats [flags] [UNIKERNEL...]",
		Short: "Show the host CPU and memory that running unikernels use",
		Long: `Stats shows, for each running unikernel (or those named), the host CPU its monitor
process uses (percent of one CPU, over the last second) and that process's resident memory,
which includes the guest memory the guest has touched. Guest memory in use and network I/O
are not reported yet: the monitor has no channel to ask it through.`,
		RunE: func(_ *cobra.Command, args []string) error { return runStats(args, noStream) },
	}
	c.Flags().BoolVar(&noStream, "no-stream", false, "print one sample and exit")
	return c
}

func runStats(refs []string, noStream bool) error {
	store, err := openStore()
	if err != nil {
		return err
	}
	var list []*instance.Instance
	if len(refs) == 0 {
		all, err := store.List()
		if err != nil {
			return err
		}
		for _, inst := range all {
			if inst.State.Status == instance.StatusRunning {
				list = append(list, inst)
			}
		}
	}
	for _, ref := range refs {
		inst, err := store.Get(ref)
		if err != nil {
			return err
		}
		list = append(list, inst)
	}
	prev := map[string]uint64{}
	sample := func() {
		for _, inst := range list {
			prev[inst.ID] = cpuTicks(inst.State.Pid)
		}
	}
	sample()
	for {
		time.Sleep(time.Second)
		if !noStream {
			fmt.Print("\033[2J\033[H") // clear the screen, as docker stats does
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
		fmt.Fprintln(w, "ID\tNAME\tCPU %\tHOST RSS\tPID")
		for _, inst := range list {
			now := cpuTicks(inst.State.Pid)
			cpu, rss := "--", "--"
			if inst.Live() && inst.State.Pid != 0 {
				cpu = fmt.Sprintf("%.2f%%", float64(now-prev[inst.ID])/clockTicks*100)
				rss = fmt.Sprintf("%.1fMiB", float64(residentKiB(inst.State.Pid))/1024)
			}
			prev[inst.ID] = now
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\n", inst.ID[:12], inst.Config.Name, cpu, rss, inst.State.Pid)
		}
		w.Flush()
		if noStream {
			return nil
		}
	}
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every Linux ABI pith runs on.
const clockTicks = 100

// cpuTicks is the user and system CPU time of process pid (and its threads), from
// /proc/PID/stat (proc(5): fields 14 and 15).
func cpuTicks(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil || pid == 0 {
		return 0
	}
	s := string(b)
	// The command name, field 2, may hold spaces: count fields after its ')'.
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return u + st
}

// residentKiB is process pid's resident set (VmRSS in /proc/PID/status).
func residentKiB(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
