package shim

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// launch is how the shim runs a container's unikernel: pith run's arguments, worked out
// at create from the bundle's OCI spec.
type launch struct {
	args      []string // pith's arguments, from "run" on
	netns     string   // the network namespace to run the monitor in ("": the shim's)
	cgroup    string   // linux.cgroupsPath: the monitor's cgroup ("": none)
	cpuQuota  int64    // microseconds of CPU time per cpuPeriod; 0 for none
	cpuPeriod uint64
	terminal  bool
	dns       []string // the nameservers of the resolv.conf the spec mounts, for a pod network
	// oomScoreAdj is the monitor's oom_score_adj: process.oomScoreAdj (CRI's, by QoS class).
	oomScoreAdj int
}

// The kernel file systems a container's spec mounts for a process (runc's defaults,
// CRI's): a unikernel's kernel gives its app its own /proc, /dev and /sys.
var kernelFileSystems = map[string]bool{
	"proc": true, "sysfs": true, "devpts": true, "mqueue": true, "cgroup": true, "cgroup2": true,
}

// kernelPaths are where the guest's kernel answers itself: binds there (CRI's
// /dev/shm and /dev/termination-log) are left to it.
var kernelPaths = []string{"/proc", "/dev", "/sys"}

// maxCPUs is the most vCPUs pith gives a guest (abi.MaxCPUs; not imported, to keep the
// guest ABI out of the shim).
const maxCPUs = 16

// fromSpec works out the launch of the container whose root filesystem is at rootfs,
// with spec as its OCI runtime spec. What a unikernel cannot honour is refused here,
// with what to change, rather than ignored.
func fromSpec(spec *specs.Spec, bundle, rootfs, report string) (*launch, error) {
	p := spec.Process
	if p == nil || len(p.Args) == 0 {
		return nil, errors.New("the container has no process to run (process.args is empty)")
	}
	if p.User.UID != 0 || p.User.GID != 0 {
		return nil, fmt.Errorf("the container runs as user %d:%d; a unikernel's app is the whole machine and runs as root (0:0): run it as root (for Kubernetes, runAsUser: 0)", p.User.UID, p.User.GID)
	}
	l := &launch{terminal: p.Terminal}
	if p.OOMScoreAdj != nil {
		l.oomScoreAdj = *p.OOMScoreAdj
	}
	a := []string{"run", "--rootfs", rootfs, "--report", report}
	if spec.Root != nil && spec.Root.Readonly {
		a = append(a, "--read-only")
	}
	hostname := spec.Hostname
	if p.Cwd != "" {
		a = append(a, "-w", p.Cwd)
	}
	for _, e := range p.Env {
		a = append(a, "-e", e)
	}
	tmpfs := 0
	for _, m := range spec.Mounts {
		if kernelProvides(m) {
			continue
		}
		if fi, err := os.Stat(m.Source); err == nil && !fi.IsDir() {
			switch m.Destination {
			case "/etc/hosts":
				// pith writes it itself, as CRI and Docker would: localhost, the guest's
				// own address and its name.
				continue
			case "/etc/hostname":
				// CRI's containers take the pod's name from it.
				if b, err := os.ReadFile(m.Source); err == nil && hostname == "" {
					hostname = strings.TrimSpace(string(b))
				}
				continue
			case "/etc/resolv.conf":
				if l.dns, err = nameservers(m.Source); err != nil {
					return nil, err
				}
				continue
			}
		}
		if m.Type == "tmpfs" {
			// An empty, writable directory of the container's own, gone with its bundle.
			dir := filepath.Join(bundle, "tmpfs", strconv.Itoa(tmpfs))
			tmpfs++
			if err := os.MkdirAll(dir, 0o1777); err != nil {
				return nil, err
			}
			m = specs.Mount{Type: "bind", Source: dir, Destination: m.Destination, Options: m.Options}
		}
		v, err := volume(m)
		if err != nil {
			return nil, err
		}
		a = append(a, "-v", v)
	}
	if hostname != "" {
		a = append(a, "--hostname", hostname)
	}
	var own bool
	l.netns, own = networkNamespace(spec)
	switch {
	case l.netns != "":
		// Set up at start: a tap in that namespace (network.go), and its flags.
	case own:
		a = append(a, "--net", "none") // a new namespace of its own, empty: its loopback only
	default:
		// The host's network, as runc would share it: the user network reaches out
		// through the host's sockets.
		a = append(a, "--net", "user")
	}
	if linux := spec.Linux; linux != nil {
		l.cgroup = linux.CgroupsPath
		if r := linux.Resources; r != nil {
			if r.Memory != nil && r.Memory.Limit != nil && *r.Memory.Limit > 0 {
				a = append(a, "-m", strconv.FormatInt(*r.Memory.Limit, 10))
			}
			if c := r.CPU; c != nil && c.Quota != nil && *c.Quota > 0 {
				period := uint64(100000)
				if c.Period != nil && *c.Period > 0 {
					period = *c.Period
				}
				l.cpuQuota, l.cpuPeriod = *c.Quota, period
				cpus := (uint64(*c.Quota) + period - 1) / period
				a = append(a, "--cpus", strconv.FormatUint(min(max(cpus, 1), maxCPUs), 10))
			}
		}
	}
	l.args = append(append(a, "--"), p.Args...)
	return l, nil
}

// kernelProvides reports whether the guest's kernel provides what mount m would.
func kernelProvides(m specs.Mount) bool {
	if kernelFileSystems[m.Type] {
		return true
	}
	for _, k := range kernelPaths {
		if m.Destination == k || strings.HasPrefix(m.Destination, k+"/") {
			return true
		}
	}
	return false
}

// volume is pith run's -v for a bind mount of the spec.
func volume(m specs.Mount) (string, error) {
	bind := m.Type == "bind"
	ro := false
	for _, o := range m.Options {
		switch o {
		case "bind", "rbind":
			bind = true
		case "ro":
			ro = true
		}
	}
	if fi, err := os.Stat(m.Source); err == nil && !fi.IsDir() {
		return "", fmt.Errorf("mount %s from %s: pith shows the guest host directories, not single files: mount the directory that holds it", m.Destination, m.Source)
	}
	if !bind {
		return "", fmt.Errorf("mount %s (%s): pith shows the guest host directories (bind mounts) and empty ones for tmpfs mounts; it cannot mount a %s file system", m.Destination, m.Type, m.Type)
	}
	if !filepath.IsAbs(m.Destination) || !filepath.IsAbs(m.Source) {
		return "", fmt.Errorf("mount %s from %s: both paths must be absolute", m.Destination, m.Source)
	}
	if strings.Contains(m.Source+m.Destination, ":") {
		return "", fmt.Errorf("mount %s from %s: pith cannot mount a path with a ':' in it", m.Destination, m.Source)
	}
	mode := "rw"
	if ro {
		mode = "ro"
	}
	return m.Source + ":" + m.Destination + ":" + mode, nil
}

// nameservers reads the nameserver lines of a resolv.conf.
func nameservers(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ns []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" {
			ns = append(ns, f[1])
		}
	}
	return ns, nil
}

// PauseArg, as the shim's first argument, makes it a pod's pause process (Pause).
const PauseArg = "pause"

// sandboxLaunch is the launch of a pod's sandbox: the shim's own pause process, in the
// pod's network namespace.
func sandboxLaunch(spec *specs.Spec) *launch {
	l := &launch{args: []string{PauseArg}}
	if spec.Process != nil && spec.Process.OOMScoreAdj != nil {
		l.oomScoreAdj = *spec.Process.OOMScoreAdj
	}
	l.netns, _ = networkNamespace(spec)
	return l
}

// networkNamespace is the path of the network namespace spec names, and whether it asks
// for one at all (without a path: a new one, empty).
func networkNamespace(spec *specs.Spec) (path string, own bool) {
	if spec.Linux != nil {
		for _, ns := range spec.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace {
				path, own = ns.Path, true
			}
		}
	}
	return path, own
}

// Pause is a pod sandbox's process: it holds the pod's namespaces until SIGTERM or
// SIGINT, and exits 0 then, as Kubernetes' pause does.
func Pause() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT)
	<-sigs
	os.Exit(0)
}
