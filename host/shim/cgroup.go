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

// cgroupRoot is where the unified (v2) cgroup hierarchy is mounted.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupDir is the host directory of the cgroup a spec's linux.cgroupsPath names, or ""
// where there is none the shim can make: no path, systemd's slice:prefix:name form, or no
// cgroup v2 hierarchy.
func cgroupDir(path string) string {
	if path == "" || !filepath.IsAbs(path) || strings.Contains(path, ":") {
		return ""
	}
	var st unix.Statfs_t
	if unix.Statfs(cgroupRoot, &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		return ""
	}
	return filepath.Join(cgroupRoot, filepath.Clean(path))
}

// joinCgroup makes the container's cgroup, with its CPU quota, and starts cmd in it
// (clone3's CLONE_INTO_CGROUP: the monitor never runs outside it). It returns the
// cgroup's directory, open, to close once cmd has started; nil where the spec names no
// cgroup the shim can make. A CPU quota without one is refused: it would be ignored.
func joinCgroup(l *launch, cmd *exec.Cmd) (*os.File, error) {
	dir := cgroupDir(l.cgroup)
	if dir == "" {
		if l.cpuQuota > 0 {
			return nil, fmt.Errorf("the container has a CPU quota, which pith applies with a cgroup v2 hierarchy at %s, and linux.cgroupsPath %q is not a path in one", cgroupRoot, l.cgroup)
		}
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("the container's cgroup: %w", err)
	}
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
	return f, nil
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
	dir := cgroupDir(path)
	if dir == "" {
		return
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) || !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return
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
	m, err := cgroupStats(cgroupDir(cg))
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

// cgroupStats reads a cgroup's CPU and memory statistics.
func cgroupStats(dir string) (*stats.Metrics, error) {
	if dir == "" {
		return nil, errors.New("no cgroup")
	}
	cpu, err := keyValues(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return nil, err
	}
	m := &stats.Metrics{CPU: &stats.CPUStat{UsageUsec: cpu["usage_usec"], UserUsec: cpu["user_usec"], SystemUsec: cpu["system_usec"],
		NrPeriods: cpu["nr_periods"], NrThrottled: cpu["nr_throttled"], ThrottledUsec: cpu["throttled_usec"]}}
	if b, err := os.ReadFile(filepath.Join(dir, "memory.current")); err == nil {
		usage, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		m.Memory = &stats.MemoryStat{Usage: usage}
		if b, err := os.ReadFile(filepath.Join(dir, "memory.max")); err == nil {
			m.Memory.UsageLimit, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "pids.current")); err == nil {
		n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		m.Pids = &stats.PidsStat{Current: n}
	}
	return m, nil
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
