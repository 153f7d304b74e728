package cli

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pithvm/pith/host/instance"
	"github.com/pithvm/pith/host/monitor"
)

func newStatsCommand() *cobra.Command {
	var noStream bool
	c := &cobra.Command{
		Use:   "stats [flags] [UNIKERNEL...]",
		Short: "Show the host CPU and memory that running unikernels use",
		Long: `Stats shows, for each running unikernel (or those named), the host CPU its monitor
process uses (percent of one CPU, over the last second) and that process's resident memory,
which includes the guest memory the guest has touched; and, asked of the monitor, the guest
memory its kernel has in use against the guest's size (-m), and the bytes its NIC has
received and sent (NET I/O, as the guest sees it).`,
		RunE: func(_ *cobra.Command, args []string) error { return runStats(args, noStream) },
	}
	c.Flags().BoolVar(&noStream, "no-stream", false, "print one sample and exit")
	return c
}

func runStats(refs []string, noStream bool) error {
	store, err := openInstances()
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
		fmt.Fprintln(w, "ID\tNAME\tCPU %\tHOST RSS\tGUEST MEM / LIMIT\tNET I/O\tPID")
		for _, inst := range list {
			now := cpuTicks(inst.State.Pid)
			cpu, rss, mem, netIO := "--", "--", "--", "--"
			if inst.Live() && inst.State.Pid != 0 {
				cpu = fmt.Sprintf("%.2f%%", float64(now-prev[inst.ID])/clockTicks*100)
				rss = fmt.Sprintf("%.1fMiB", float64(residentKiB(inst.State.Pid))/1024)
				if ls, err := liveStats(inst); err == nil {
					mem = fmt.Sprintf("%.1fMiB / %.0fMiB", float64(ls.GuestMemory)/(1<<20), float64(ls.GuestMemoryLimit)/(1<<20))
					netIO = humanBytes(ls.NIC.BytesReceived) + " / " + humanBytes(ls.NIC.BytesSent)
				}
			}
			prev[inst.ID] = now
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", inst.ID[:12], inst.Config.Name, cpu, rss, mem, netIO, inst.State.Pid)
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

// liveStats asks the unikernel's monitor what its guest uses now (detach.go, serveStats).
func liveStats(inst *instance.Instance) (monitor.LiveStats, error) {
	var ls monitor.LiveStats
	conn, err := net.DialTimeout("unix", statsSocket(inst), time.Second)
	if err != nil {
		return ls, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	return ls, json.NewDecoder(conn).Decode(&ls)
}

// humanBytes is a byte count as Docker's stats writes it: 1.5kB, 3MB (powers of 1000).
func humanBytes(n uint64) string {
	v := float64(n)
	for _, unit := range []string{"B", "kB", "MB", "GB"} {
		if v < 1000 || unit == "GB" {
			if unit == "B" {
				return fmt.Sprintf("%dB", n)
			}
			return fmt.Sprintf("%.3g%s", v, unit)
		}
		v /= 1000
	}
	return ""
}
