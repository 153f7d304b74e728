package shim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3/cgroup2/stats"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"golang.org/x/sys/unix"
)

// cgroupRoot is where the cgroup hierarchies are mounted: the unified (v2) one, or the
// v1 controllers' beneath it, one directory each.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupV1Controllers are the v1 hierarchies a container's cgroup is made in where the
// host has no unified one: cpu for the quota, the others for the statistics.
var cgroupV1Controllers = []string{"cpu", "cpuacct", "memory", "pids"}

// cgroupDirs are the host directories of the cgroup a spec's linux.cgroupsPath names:
// one in a unified (v2) hierarchy, or one in each v1 controller's that the host mounts
// (once where two controllers share a hierarchy, as cpu,cpuacct). v1 is
// true for those. None where the shim can make none: no path, systemd's
// slice:prefix:name form, or no cgroup file system.
func cgroupDirs(path string) (dirs []string, v1 bool) {
	if path == "" || !filepath.IsAbs(path) || strings.Contains(path, ":") {
		return nil, false
	}
	var st unix.Statfs_t
	if unix.Statfs(cgroupRoot, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return []string{filepath.Join(cgroupRoot, filepath.Clean(path))}, false
	}
	seen := map[string]bool{}
	for _, c := range cgroupV1Controllers {
		mount, err := filepath.EvalSymlinks(filepath.Join(cgroupRoot, c))
		if err != nil || seen[mount] || unix.Statfs(mount, &st) != nil || st.Type != unix.CGROUP_SUPER_MAGIC {
			continue
		}
		seen[mount] = true
		dirs = append(dirs, filepath.Join(mount, filepath.Clean(path)))
	}
	return dirs, len(dirs) > 0
}

// cgroupV1Marker is a file each v1 controller's cgroups have.
var cgroupV1Marker = map[string]string{"cpu": "cpu.cfs_quota_us", "cpuacct": "cpuacct.usage", "memory": "memory.usage_in_bytes", "pids": "pids.current"}

// cgroupV1Dir is the directory of dirs in the v1 hierarchy that has controller, or "".
func cgroupV1Dir(dirs []string, controller string) string {
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, cgroupV1Marker[controller])); err == nil {
			return d
		}
	}
	return ""
}

// joined is the container's cgroup as its monitor starts.
type joined struct {
	dir *os.File // v2: the cgroup's directory, which the monitor is cloned into
	v1  []string // v1: the cgroups the monitor is moved into once started
}

// joinCgroup makes the container's cgroup, with its CPU quota, and has cmd start in it:
// in v2 by clone3's CLONE_INTO_CGROUP (the monitor never runs outside it), in v1 by
// moving it there at once (started). nil where the spec names no cgroup the shim can
// make. A CPU quota without one is refused: it would be ignored.
func joinCgroup(l *launch, cmd *exec.Cmd) (*joined, error) {
	dirs, v1 := cgroupDirs(l.cgroup)
	if len(dirs) == 0 {
		if l.cpuQuota > 0 {
			return nil, fmt.Errorf("the container has a CPU quota, which pith applies with a cgroup hierarchy at %s, and linux.cgroupsPath %q is not a path in one", cgroupRoot, l.cgroup)
		}
		return nil, nil
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("the container's cgroup: %w", err)
		}
	}
	if v1 {
		if l.cpuQuota > 0 {
			d := cgroupV1Dir(dirs, "cpu")
			if d == "" {
				return nil, fmt.Errorf("the container has a CPU quota, and the host's cgroup v1 hierarchies at %s have no cpu controller", cgroupRoot)
			}
			// The period first: a quota is checked against the period in force.
			for _, f := range [][2]string{{"cpu.cfs_period_us", strconv.FormatUint(l.cpuPeriod, 10)}, {"cpu.cfs_quota_us", strconv.FormatInt(l.cpuQuota, 10)}} {
				if err := os.WriteFile(filepath.Join(d, f[0]), []byte(f[1]), 0); err != nil {
					return nil, fmt.Errorf("the container's CPU quota (%s/%s): %w", d, f[0], err)
				}
			}
		}
		return &joined{v1: dirs}, nil
	}
	dir := dirs[0]
	if l.cpuQuota > 0 {
		enableControllers(dir, "cpu")
		v := fmt.Sprintf("%d %d", l.cpuQuota, l.cpuPeriod)
		if err := os.WriteFile(filepath.Join(dir, "cpu.max"), []byte(v), 0); err != nil {
			return nil, fmt.Errorf("the container's CPU quota (%s/cpu.max): %w", dir, err)
		}
	}
	enableControllers(dir, "memory") // for the statistics, where the host allows
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(f.Fd())
	return &joined{dir: f}, nil
}

// started finishes the join once the monitor, pid, has started: in v1 it moves there
// now, while its Go runtime comes up and before it has started a guest or another
// process (what it allocated before the move stays charged where it was). It closes
// what the join held.
func (j *joined) started(pid int) error {
	if j == nil {
		return nil
	}
	if j.dir != nil {
		j.dir.Close()
	}
	if pid == 0 {
		return nil
	}
	for _, d := range j.v1 {
		err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
		if errors.Is(err, unix.ESRCH) {
			return nil // it has ended already: its wait says how
		}
		if err != nil {
			return fmt.Errorf("moving pith into the container's cgroup %s: %w", d, err)
		}
	}
	return nil
}

// enableControllers makes controller available to dir by enabling it in each ancestor's
// cgroup.subtree_control, as runc does; where the host refuses, dir goes without it.
func enableControllers(dir, controller string) {
	var parents []string
	for p := filepath.Dir(dir); strings.HasPrefix(p, cgroupRoot); p = filepath.Dir(p) {
		parents = append([]string{p}, parents...)
		if p == cgroupRoot {
			break
		}
	}
	for _, p := range parents {
		os.WriteFile(filepath.Join(p, "cgroup.subtree_control"), []byte("+"+controller), 0)
	}
}

// removeCgroup removes the container's cgroup. pith's teardown holder, which frees the
// guest's memory just after the monitor exits, is in it too: removeCgroup waits up to
// 5 s for the cgroup to empty.
func removeCgroup(path string) {
	dirs, _ := cgroupDirs(path)
	deadline := time.Now().Add(5 * time.Second)
	for _, dir := range dirs {
		for ; ; time.Sleep(10 * time.Millisecond) {
			err := os.Remove(dir)
			if err == nil || errors.Is(err, os.ErrNotExist) || !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
				break
			}
		}
	}
}

// Stats reports the container's CPU time and memory: its cgroup's, where it has one, or
// else its monitor's (whose memory is the guest's resident memory and its own), as
// cgroup v2 statistics, which ctr and the CRI read.
func (s *service) Stats(ctx context.Context, r *taskAPI.StatsRequest) (*taskAPI.StatsResponse, error) {
	c, err := s.locked(r.ID, "")
	if err != nil {
		return nil, err
	}
	pid, cg := c.pid, c.launch.cgroup
	s.mu.Unlock()
	if pid == 0 {
		return nil, errdefs.ToGRPCf(errdefs.ErrFailedPrecondition, "container %s has not started", r.ID)
	}
	m, err := cgroupStats(cgroupDirs(cg))
	if err != nil {
		if m, err = processStats(pid); err != nil {
			return nil, err
		}
	}
	a, err := typeurl.MarshalAny(m)
	if err != nil {
		return nil, err
	}
	return &taskAPI.StatsResponse{Stats: typeurl.MarshalProto(a)}, nil
}

// cgroupStats reads a cgroup's CPU and memory statistics, v1's as v2's.
func cgroupStats(dirs []string, v1 bool) (*stats.Metrics, error) {
	if len(dirs) == 0 {
		return nil, errors.New("no cgroup")
	}
	if v1 {
		return cgroupV1Stats(dirs)
	}
	dir := dirs[0]
	cpu, err := keyValues(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return nil, err
	}
	m := &stats.Metrics{CPU: &stats.CPUStat{UsageUsec: cpu["usage_usec"], UserUsec: cpu["user_usec"], SystemUsec: cpu["system_usec"],
		NrPeriods: cpu["nr_periods"], NrThrottled: cpu["nr_throttled"], ThrottledUsec: cpu["throttled_usec"]}}
	if usage, err := readUint(filepath.Join(dir, "memory.current")); err == nil {
		m.Memory = &stats.MemoryStat{Usage: usage}
		m.Memory.UsageLimit, _ = readUint(filepath.Join(dir, "memory.max"))
	}
	if n, err := readUint(filepath.Join(dir, "pids.current")); err == nil {
		m.Pids = &stats.PidsStat{Current: n}
	}
	return m, nil
}

// cgroupV1Stats reads the statistics of the v1 controllers' cgroups in dirs.
func cgroupV1Stats(dirs []string) (*stats.Metrics, error) {
	d := cgroupV1Dir(dirs, "cpuacct")
	if d == "" {
		return nil, errors.New("no cpuacct cgroup")
	}
	usage, err := readUint(filepath.Join(d, "cpuacct.usage")) // nanoseconds
	if err != nil {
		return nil, err
	}
	ticks, _ := keyValues(filepath.Join(d, "cpuacct.stat")) // USER_HZ, 100
	m := &stats.Metrics{CPU: &stats.CPUStat{UsageUsec: usage / 1000, UserUsec: ticks["user"] * 1e4, SystemUsec: ticks["system"] * 1e4}}
	if d := cgroupV1Dir(dirs, "cpu"); d != "" {
		if throttled, err := keyValues(filepath.Join(d, "cpu.stat")); err == nil {
			m.CPU.NrPeriods, m.CPU.NrThrottled, m.CPU.ThrottledUsec = throttled["nr_periods"], throttled["nr_throttled"], throttled["throttled_time"]/1000
		}
	}
	if d := cgroupV1Dir(dirs, "memory"); d != "" {
		if usage, err := readUint(filepath.Join(d, "memory.usage_in_bytes")); err == nil {
			m.Memory = &stats.MemoryStat{Usage: usage}
			m.Memory.UsageLimit, _ = readUint(filepath.Join(d, "memory.limit_in_bytes"))
		}
	}
	if d := cgroupV1Dir(dirs, "pids"); d != "" {
		if n, err := readUint(filepath.Join(d, "pids.current")); err == nil {
			m.Pids = &stats.PidsStat{Current: n}
		}
	}
	return m, nil
}

// readUint reads a cgroup file holding one number.
func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// processStats reads the monitor process's CPU time and resident memory.
func processStats(pid int) (*stats.Metrics, error) {
	f, err := procStat(pid)
	if err != nil {
		return nil, errdefs.ToGRPCf(errdefs.ErrNotFound, "the container's monitor: %v", err)
	}
	ticks := func(s string) uint64 { n, _ := strconv.ParseUint(s, 10, 64); return n * 1e6 / 100 } // USER_HZ is 100
	user, system := ticks(f[11]), ticks(f[12])
	pages, _ := strconv.ParseUint(f[21], 10, 64)
	return &stats.Metrics{CPU: &stats.CPUStat{UsageUsec: user + system, UserUsec: user, SystemUsec: system},
		Memory: &stats.MemoryStat{Usage: pages * uint64(os.Getpagesize())}}, nil
}

// keyValues reads a cgroup file of "key value" lines.
func keyValues(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	kv := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok {
			kv[k], _ = strconv.ParseUint(v, 10, 64)
		}
	}
	return kv, nil
}
