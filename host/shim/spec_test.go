package shim

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A spec as containerd's CRI writes one for a pod's container: the kernel file systems
// and CRI's own binds are the guest kernel's or pith's business; the rest becomes pith
// run's flags.
func TestSpecBecomesPithRunFlags(t *testing.T) {
	dir, bundle := t.TempDir(), t.TempDir()
	resolv := filepath.Join(dir, "resolv.conf")
	hosts := filepath.Join(dir, "hosts")
	os.WriteFile(resolv, []byte("search default.svc\nnameserver 10.96.0.10\n"), 0o644)
	os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644)
	limit, quota, period := int64(128<<20), int64(150000), uint64(100000)
	spec := &specs.Spec{
		Hostname: "web-1",
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Process: &specs.Process{Args: []string{"/app", "-port", "80"}, Env: []string{"PATH=/bin", "A=b c"},
			Cwd: "/srv"},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"},
			{Destination: "/dev/shm", Type: "bind", Source: dir, Options: []string{"rbind", "rw"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup"},
			{Destination: "/etc/hosts", Type: "bind", Source: hosts, Options: []string{"rbind", "rw"}},
			{Destination: "/etc/resolv.conf", Type: "bind", Source: resolv, Options: []string{"rbind", "ro"}},
			{Destination: "/data", Type: "bind", Source: dir, Options: []string{"rbind", "ro"}},
			{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: "/kubepods/pod1/c1",
			Namespaces:  []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: "/var/run/netns/cni-1"}},
			Resources: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit},
				CPU: &specs.LinuxCPU{Quota: &quota, Period: &period}},
		},
	}
	l, err := fromSpec(spec, bundle, "/b/rootfs", "/b/report")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(l.args, " ")
	want := "run --rootfs /b/rootfs --report /b/report --read-only -w /srv -e PATH=/bin -e A=b c " +
		"-v " + dir + ":/data:ro -v " + bundle + "/tmpfs/0:/run:rw --hostname web-1 -m 134217728 --cpus 2 -- /app -port 80"
	if got != want {
		t.Errorf("pith's arguments:\n got %s\nwant %s", got, want)
	}
	if l.netns != "/var/run/netns/cni-1" || l.cgroup != "/kubepods/pod1/c1" || l.cpuQuota != quota || l.cpuPeriod != period {
		t.Errorf("launch %+v", l)
	}
	if !slices.Equal(l.dns, []string{"10.96.0.10"}) {
		t.Errorf("nameservers %q, want the resolv.conf's 10.96.0.10", l.dns)
	}
	n := &podNetwork{Tap: true, Address: netip.MustParsePrefix("10.88.0.5/16"), MAC: "aa:bb:cc:dd:ee:ff"}
	withNet := strings.Join(n.flags(l.args, l.dns), " ")
	if !strings.Contains(withNet, "--cpus 2 --net tap:pith0 --ip 10.88.0.5/16 --mac-address aa:bb:cc:dd:ee:ff --dns 10.96.0.10 -- /app") {
		t.Errorf("with the pod network: %s", withNet)
	}
}

// A pod's container takes its host name from the /etc/hostname CRI mounts.
func TestSpecHostnameFromCRI(t *testing.T) {
	file := filepath.Join(t.TempDir(), "hostname")
	os.WriteFile(file, []byte("web-2\n"), 0o644)
	spec := &specs.Spec{Process: &specs.Process{Args: []string{"/app"}},
		Mounts: []specs.Mount{{Destination: "/etc/hostname", Type: "bind", Source: file, Options: []string{"rbind", "rw"}}}}
	l, err := fromSpec(spec, t.TempDir(), "/r", "/rep")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(l.args, " "); !strings.Contains(got, "--hostname web-2 ") {
		t.Errorf("pith's arguments: %s", got)
	}
}

// A container with no network namespace of its own shares the host's: the user network.
// One with a new, empty namespace (ctr run's default) has its loopback only.
func TestSpecNetworks(t *testing.T) {
	for _, c := range []struct {
		ns   []specs.LinuxNamespace
		want string
	}{
		{nil, "--net user"},
		{[]specs.LinuxNamespace{{Type: specs.NetworkNamespace}}, "--net none"},
	} {
		spec := &specs.Spec{Process: &specs.Process{Args: []string{"/app"}}, Linux: &specs.Linux{Namespaces: c.ns}}
		l, err := fromSpec(spec, t.TempDir(), "/r", "/rep")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(l.args, " "); !strings.Contains(got, c.want+" -- /app") {
			t.Errorf("namespaces %+v: %s, want %s", c.ns, got, c.want)
		}
	}
}

// What a unikernel cannot honour is refused with what to change.
func TestSpecRefusals(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	for _, c := range []struct {
		name string
		spec specs.Spec
		want string
	}{
		{"no process", specs.Spec{}, "no process"},
		{"user", specs.Spec{Process: &specs.Process{Args: []string{"/a"}, User: specs.User{UID: 65532, GID: 65532}}}, "runs as root (0:0)"},
		{"nfs", specs.Spec{Process: &specs.Process{Args: []string{"/a"}},
			Mounts: []specs.Mount{{Destination: "/cache", Type: "nfs", Source: "server:/x"}}}, "cannot mount a nfs file system"},
		{"file bind", specs.Spec{Process: &specs.Process{Args: []string{"/a"}},
			Mounts: []specs.Mount{{Destination: "/etc/app.conf", Type: "bind", Source: file, Options: []string{"rbind"}}}}, "not single files"},
	} {
		_, err := fromSpec(&c.spec, t.TempDir(), "/r", "/rep")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
	// A CPU quota with no cgroup to apply it in is refused at start, not ignored.
	quota := int64(50000)
	l, err := fromSpec(&specs.Spec{Process: &specs.Process{Args: []string{"/a"}},
		Linux: &specs.Linux{CgroupsPath: "system.slice:pith:x", Resources: &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &quota}}}}, t.TempDir(), "/r", "/rep")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := joinCgroup(l, nil); err == nil || !strings.Contains(err.Error(), "CPU quota") {
		t.Errorf("a quota with a systemd cgroup path: %v", err)
	}
}
