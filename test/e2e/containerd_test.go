package e2e

import (
	"archive/tar"
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/test/testenv"
)

// The runtime and snapshotter the containerd tests run with: the native snapshotter,
// since a machine may lack overlayfs (the nested guest's kernel has it only as a module).
var ctrRun = []string{"run", "--runtime", "io.containerd.pith.v2", "--snapshotter", "native"}

func ctrOK(t *testing.T, c *testenv.Containerd, args ...string) string {
	t.Helper()
	out, err := c.Ctr(args...)
	if err != nil {
		b, _ := os.ReadFile(c.Log)
		t.Fatalf("ctr %s: %v\n%s\ncontainerd's warnings:\n%s", strings.Join(args, " "), err, out, warnings(b))
	}
	return out
}

// warnings are the last 20 warnings and errors of containerd's log b.
func warnings(b []byte) string {
	var w []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "level=warn") || strings.Contains(line, "level=error") {
			w = append(w, line)
		}
	}
	return strings.Join(w[max(0, len(w)-20):], "\n")
}

// importProbe builds the probe into an image with pith build, saves it with pith save
// and imports the archive into c: containerd reads pith's archive as docker save's. It
// returns the image's name in containerd.
func importProbe(t *testing.T, c *testenv.Containerd) string {
	probe := testenv.Program(t, "probe")
	env := []string{"PITH_DATA=" + t.TempDir()}
	pithOK(t, env, "build", "-t", "pith-test/probe:1", probe)
	archive := filepath.Join(t.TempDir(), "probe.tar")
	pithOK(t, env, "save", "-o", archive, "pith-test/probe:1")
	ctrOK(t, c, "images", "import", "--snapshotter", "native", archive)
	out := ctrOK(t, c, "images", "ls", "-q")
	for _, name := range strings.Fields(out) {
		if strings.HasSuffix(name, "pith-test/probe:1") {
			return name
		}
	}
	t.Fatalf("containerd has no pith-test/probe:1 after importing pith save's archive: %q", out)
	return ""
}

// ctr run --runtime io.containerd.pith.v2 of an image pith pushed to a registry and
// containerd pulled: the container's program runs as a unikernel with the container's
// arguments and environment, its output reaches ctr through containerd's FIFOs, and its
// exit status is ctr's.
func TestContainerdRunsAUnikernel(t *testing.T) {
	testenv.RequireKVM(t)
	addr, stop, err := testenv.StartRegistry(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	env := []string{"PITH_DATA=" + t.TempDir()}
	img := addr + "/pith-test/probe:1"
	pithOK(t, env, "build", "-t", img, testenv.Program(t, "probe"))
	pithOK(t, env, "push", img)
	c := testenv.StartContainerd(t, "")
	ctrOK(t, c, "images", "pull", "--plain-http", "--snapshotter", "native", img)

	run := func(args ...string) (string, int) {
		out, err := c.Ctr(append(append(ctrRun, "--rm"), args...)...)
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("ctr run %v: %v", args, err)
		}
		return out, code
	}
	if out, code := run(img, "c-args", "/usr/local/bin/probe", "args", "a b"); code != 0 ||
		out != "0=\"/usr/local/bin/probe\"\n1=\"args\"\n2=\"a b\"\n" {
		t.Errorf("ctr run ... probe args: exit %d, output %q", code, out)
	}
	if out, code := run("--env", "GREETING=from ctr", img, "c-env", "/usr/local/bin/probe", "env", "GREETING"); code != 0 || out != "from ctr\n" {
		t.Errorf("ctr run --env: exit %d, output %q", code, out)
	}
	if out, code := run(img, "c-exit", "/usr/local/bin/probe", "exit", "7"); code != 7 {
		t.Errorf("ctr run ... probe exit 7: exit %d, output %q", code, out)
	}
	// A write goes to the container's own root filesystem, which containerd made.
	if out, code := run(img, "c-write", "/usr/local/bin/probe", "create", "/written"); code != 0 || !strings.Contains(out, "create /written <nil>") {
		t.Errorf("ctr run ... probe create /written: exit %d, output %q", code, out)
	}
	// With a terminal (ctr run -t on one): the shim gives the monitor a pseudo-terminal,
	// and copies between it and containerd.
	master, slavePath, err := console.NewPty()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	slave, err := os.OpenFile(slavePath, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	tty := c.CtrCommand(append(append(ctrRun, "--rm", "-t"), img, "c-tty", "/usr/local/bin/probe", "args", "on a terminal")...)
	tty.Stdin, tty.Stdout, tty.Stderr = slave, slave, slave
	tty.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := tty.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	timer := time.AfterFunc(2*time.Minute, func() { tty.Process.Kill() })
	screen, _ := io.ReadAll(master) // ends with EIO once ctr, the last holder of the terminal, exits
	timer.Stop()
	if err := tty.Wait(); err != nil || !strings.Contains(string(screen), "2=\"on a terminal\"\r\n") {
		t.Errorf("ctr run -t: %v, the terminal shows %q", err, screen)
	}

	if left := ctrOK(t, c, "containers", "ls", "-q"); strings.TrimSpace(left) != "" {
		t.Errorf("containers left after ctr run --rm: %q", left)
	}
}

// A container's life under containerd: ps, metrics, pause and resume, exec refused,
// kill, delete; a guest that runs out of its memory limit is reported as an OOM event.
func TestContainerdTaskLifecycle(t *testing.T) {
	testenv.RequireKVM(t)
	c := testenv.StartContainerd(t, "")
	img := importProbe(t, c)

	events := c.CtrCommand("events")
	eventsOut, _ := events.StdoutPipe()
	if err := events.Start(); err != nil {
		t.Fatal(err)
	}
	defer events.Process.Kill()
	seen := make(chan string, 256)
	go func() {
		s := bufio.NewScanner(eventsOut)
		for s.Scan() {
			seen <- s.Text()
		}
		close(seen)
	}()

	// Its output to a file (a file:// log, as ctr run -d --log-uri asks).
	logFile := filepath.Join(t.TempDir(), "life.log")
	ctrOK(t, c, append(ctrRun, "-d", "--cpus", "2", "--log-uri", "file://"+logFile, img, "life", "/usr/local/bin/probe", "forever")...)
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("the container's output:\n%s", b)
		}
	}()
	status := func() string {
		out := ctrOK(t, c, "tasks", "ls")
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == "life" {
				return f[2]
			}
		}
		return ""
	}
	if s := status(); s != "RUNNING" {
		t.Fatalf("ctr tasks ls says %q, want RUNNING", s)
	}
	pids := ctrOK(t, c, "tasks", "ps", "life")
	m := regexp.MustCompile(`(?m)^(\d+)\s`).FindStringSubmatch(pids)
	if m == nil {
		t.Fatalf("ctr tasks ps: %q", pids)
	}
	if cmdline, err := os.ReadFile("/proc/" + m[1] + "/cmdline"); err != nil || !strings.Contains(string(cmdline), "--rootfs") {
		t.Errorf("ctr tasks ps names %s, which is not the container's pith monitor: %q %v", m[1], cmdline, err)
	} else if !strings.Contains(string(cmdline), "\x00--cpus\x002\x00") {
		t.Errorf("ctr run --cpus 2: the monitor runs %q", cmdline)
	}
	// With the spec's OOM score (none: 0), not the shim's (containerd's + 1).
	if b, err := os.ReadFile("/proc/" + m[1] + "/oom_score_adj"); err != nil || strings.TrimSpace(string(b)) != "0" {
		t.Errorf("the monitor's oom_score_adj: %q %v, want 0", b, err)
	}
	// The monitor runs in the container's cgroup (ctr's /NAMESPACE/ID), with the CPU quota:
	// in the unified hierarchy, or in each v1 controller's where the host has those.
	cgroupPath := "/" + testenv.Namespace + "/life"
	cgroup := "/sys/fs/cgroup" + cgroupPath
	var fs unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &fs) == nil && fs.Type == unix.CGROUP2_SUPER_MAGIC {
		if b, err := os.ReadFile(cgroup + "/cpu.max"); err != nil || strings.TrimSpace(string(b)) != "200000 100000" {
			t.Errorf("%s/cpu.max: %q %v, want 200000 100000", cgroup, b, err)
		}
		if b, err := os.ReadFile("/proc/" + m[1] + "/cgroup"); err != nil || strings.TrimSpace(string(b)) != "0::"+cgroupPath {
			t.Errorf("the monitor's cgroup: %q %v", b, err)
		}
	} else {
		cgroup = "/sys/fs/cgroup/cpu" + cgroupPath
		for f, want := range map[string]string{"cpu.cfs_quota_us": "200000", "cpu.cfs_period_us": "100000"} {
			if b, err := os.ReadFile(cgroup + "/" + f); err != nil || strings.TrimSpace(string(b)) != want {
				t.Errorf("%s/%s: %q %v, want %s", cgroup, f, b, err, want)
			}
		}
		if b, err := os.ReadFile("/proc/" + m[1] + "/cgroup"); err != nil || !regexp.MustCompile(`(?m)^\d+:([a-z]+,)*cpu(,[a-z]+)*:`+regexp.QuoteMeta(cgroupPath)+`$`).Match(b) {
			t.Errorf("the monitor's cgroups (v1): %q %v, want cpu's %s", b, err, cgroupPath)
		}
	}
	if out := ctrOK(t, c, "tasks", "metrics", "life"); !regexp.MustCompile(`memory\.usage_in_bytes\s+[1-9]|memory.usage\s+[1-9]`).MatchString(out) {
		t.Errorf("ctr tasks metrics shows no memory in use:\n%s", out)
	}
	ctrOK(t, c, "tasks", "pause", "life")
	if s := status(); s != "PAUSED" {
		t.Errorf("after pause: %q", s)
	}
	ctrOK(t, c, "tasks", "resume", "life")
	if s := status(); s != "RUNNING" {
		t.Errorf("after resume: %q", s)
	}
	if out, err := c.Ctr("tasks", "exec", "--exec-id", "e1", "life", "/usr/local/bin/probe", "args"); err == nil ||
		!strings.Contains(out, "exec is not supported in a unikernel") {
		t.Errorf("ctr tasks exec: %v, %q; want a refusal", err, out)
	}
	ctrOK(t, c, "tasks", "kill", "life") // SIGTERM, which pith passes on: the probe dies of it
	for deadline := time.Now().Add(time.Minute); status() != "STOPPED"; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still %q a minute after ctr tasks kill", status())
		}
	}
	if out := ctrOK(t, c, "tasks", "delete", "life"); !strings.Contains(out, "143") && out != "" {
		t.Errorf("ctr tasks delete: %q", out)
	}
	ctrOK(t, c, "containers", "rm", "life")
	if _, err := os.Stat(cgroup); err == nil {
		t.Errorf("the container's cgroup %s is left after delete", cgroup)
	}

	// 128 MiB of guest memory, and a program that keeps 512 MiB.
	out, err := c.Ctr(append(ctrRun, "--rm", "--memory-limit", "134217728", img, "hog", "/usr/local/bin/probe", "hog", "512")...)
	if err == nil || strings.Contains(out, "kept 512") {
		t.Errorf("a program that keeps 512 MiB in 128 MiB ran to its end: %v %q", err, out)
	}
	want := map[string]bool{"/tasks/create": false, "/tasks/start": false, "/tasks/paused": false, "/tasks/resumed": false,
		"/tasks/exit": false, "/tasks/delete": false, "/tasks/oom": false}
	for deadline := time.After(10 * time.Second); ; {
		missing := false
		for _, ok := range want {
			missing = missing || !ok
		}
		if !missing {
			break
		}
		select {
		case line, ok := <-seen:
			if !ok {
				t.Fatalf("ctr events ended; seen %v", want)
			}
			for topic := range want {
				if strings.Contains(line, topic) {
					want[topic] = true
				}
			}
			continue
		case <-deadline:
		}
		t.Fatalf("events seen: %v; the program that ran out of memory: %v\n%s", want, err, out)
	}
}

// What pith cannot run is refused when the container is made, with one line through
// ctr, and leaves nothing behind: a dynamically linked entrypoint without its dynamic
// linker, a file system a unikernel cannot mount.
func TestContainerdRefusals(t *testing.T) {
	c := testenv.StartContainerd(t, "")
	truePath, err := filepath.EvalSymlinks("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(t.TempDir(), "layout")
	if err := testenv.ScratchLayout(layout, truePath, "v1", nil); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "dynamic.tar")
	if err := tarDir(layout, archive); err != nil {
		t.Fatal(err)
	}
	ctrOK(t, c, "images", "import", "--snapshotter", "native", "--base-name", "pith-test/dynamic", archive)
	img := "pith-test/dynamic:v1"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"dynamic entrypoint", []string{img, "dyn"}, "/prog needs the dynamic linker /lib64/ld-linux-x86-64.so.2, which "},
		{"a single file", []string{"--mount", "type=bind,src=" + truePath + ",dst=/etc/true,options=rbind:ro", img, "file"}, "not single files"},
	} {
		out, err := c.Ctr(append(append(ctrRun, "--rm"), tc.args...)...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("%s: ctr run: %v, %q; want an error saying %q", tc.name, err, out, tc.want)
		}
		if strings.Contains(out, "goroutine ") {
			t.Errorf("%s: a Go stack dump through ctr:\n%s", tc.name, out)
		}
	}
	if left := ctrOK(t, c, "tasks", "ls", "-q"); strings.TrimSpace(left) != "" {
		t.Errorf("tasks left after refusals: %q", left)
	}
	// The shims are gone, and no root filesystem is still mounted.
	if ps := processes("containerd-shim-pith-v2"); len(ps) > 0 {
		t.Errorf("shims still running after refusals: %q", ps)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), c.Dir) {
		t.Errorf("mounts left under containerd's directories:\n%s", mounts)
	}
}

// tarDir writes the files beneath dir into a tar archive at out.
func tarDir(dir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = rel
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			defer src.Close()
			_, err = io.Copy(tw, src)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// criConfig is containerd's CRI plugin configured as docs/kubernetes.md says, with a
// pith runtime handler, a CNI bridge network and the tests' own pause image.
func criConfig(t *testing.T, dir string) string {
	cniBin := "/usr/lib/cni"
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBin, p)); err != nil {
			t.Fatalf("CNI's %s plugin is needed (tools/test.sh installs the Debian package containernetworking-plugins): %v", p, err)
		}
	}
	if _, err := exec.LookPath("crictl"); err != nil {
		t.Fatalf("crictl is needed (tools/test.sh builds it from the Go module proxy): %v", err)
	}
	netd := filepath.Join(dir, "net.d")
	os.MkdirAll(netd, 0o755)
	conf := `{"cniVersion": "0.4.0", "name": "pith-test", "plugins": [{"type": "bridge", "bridge": "pithcni0",
  "isGateway": true, "ipMasq": false, "ipam": {"type": "host-local", "subnet": "10.88.0.0/16",
  "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "` + filepath.Join(dir, "ipam") + `"}}]}`
	os.WriteFile(filepath.Join(netd, "10-pith-test.conflist"), []byte(conf), 0o644)
	return `[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/pith-test/pause:1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.pith]
      runtime_type = "io.containerd.pith.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "` + cniBin + `"
    conf_dir = "` + netd + `"
`
}

// Kubernetes' path, at the CRI: a pod sandbox with the pith handler (crictl runp
// --runtime pith), a net/http container in it, answered at the pod IP CNI gave, from
// the host; stopped and removed, nothing is left: no process, tap, mount or bundle.
func TestCRIPodRunsAUnikernel(t *testing.T) {
	testenv.RequireKVM(t)
	dir := t.TempDir()
	c := testenv.StartContainerd(t, criConfig(t, dir))
	env := []string{"PITH_DATA=" + t.TempDir()}
	httphello := testenv.Program(t, "httphello")
	pithOK(t, env, "build", "-t", "pith-test/httphello:1", httphello)
	pithOK(t, env, "tag", "pith-test/httphello:1", "pith-test/pause:1") // the shim runs no pause image
	archive := filepath.Join(dir, "images.tar")
	pithOK(t, env, "save", "-o", archive, "pith-test/httphello:1", "pith-test/pause:1")
	if out, err := c.CtrIn("k8s.io", "images", "import", "--snapshotter", "native", archive); err != nil {
		t.Fatalf("ctr images import: %v\n%s", err, out)
	}
	crictl := func(args ...string) string {
		t.Helper()
		out, err := c.Crictl(args...)
		if err != nil {
			b, _ := os.ReadFile(c.Log)
			t.Fatalf("crictl %s: %v\n%s\ncontainerd's warnings:\n%s", strings.Join(args, " "), err, out, warnings(b))
		}
		return strings.TrimSpace(out)
	}
	podJSON := filepath.Join(dir, "pod.json")
	os.WriteFile(podJSON, []byte(`{"metadata": {"name": "web", "namespace": "default", "uid": "pith-test-web", "attempt": 0},
  "hostname": "web", "dns_config": {"servers": ["192.0.2.53"], "searches": ["default.svc"]}, "log_directory": "`+filepath.Join(dir, "logs")+`", "linux": {}}`), 0o644)
	ctrJSON := filepath.Join(dir, "container.json")
	// The OOM score kubelet gives a BestEffort pod's containers.
	os.WriteFile(ctrJSON, []byte(`{"metadata": {"name": "hello"}, "image": {"image": "docker.io/pith-test/httphello:1"},
  "log_path": "hello.log", "linux": {"resources": {"oom_score_adj": 1000}}}`), 0o644)

	pod := crictl("runp", "--runtime", "pith", podJSON)
	id := crictl("create", pod, ctrJSON, podJSON)
	crictl("start", id)
	ip := crictl("inspectp", "--output", "go-template", "--template", "{{.status.network.ip}}", pod)
	if net.ParseIP(ip) == nil {
		t.Fatalf("the pod's IP: %q", ip)
	}
	var body []byte
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get("http://" + ip + ":8080/")
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			stdout, stderr, _ := c.CrictlLogs(id)
			t.Fatalf("the unikernel did not answer at the pod IP %s in a minute: %v\ncrictl logs:\n%s%s", ip, err, stdout, stderr)
		}
	}
	if !strings.Contains(string(body), "hello") {
		t.Errorf("GET http://%s:8080/: %q", ip, body)
	}
	if state := crictl("inspect", "--output", "go-template", "--template", "{{.status.state}}", id); state != "CONTAINER_RUNNING" {
		t.Errorf("crictl inspect: %s", state)
	}
	// A BestEffort pod's container goes first under memory pressure: its monitor (and
	// the teardown holder that shares its memory) has the container's OOM score.
	for _, d := range processDirs("\x00--rootfs\x00") {
		if b, err := os.ReadFile(d + "/oom_score_adj"); err != nil || strings.TrimSpace(string(b)) != "1000" {
			t.Errorf("the pod's monitor %s: oom_score_adj %q %v, want 1000", d, b, err)
		}
	}

	// A second unikernel in the pod would need the pod's address too: refused.
	ctr2JSON := filepath.Join(dir, "container2.json")
	os.WriteFile(ctr2JSON, []byte(`{"metadata": {"name": "second"}, "image": {"image": "docker.io/pith-test/httphello:1"},
  "log_path": "second.log", "linux": {}}`), 0o644)
	second := crictl("create", pod, ctr2JSON, podJSON)
	if out, err := c.Crictl("start", second); err == nil || !strings.Contains(err.Error(), "taken by another unikernel") {
		t.Errorf("a second unikernel in the pod: %v %s", err, out)
	}
	crictl("rm", second)

	crictl("stop", "--timeout", "30", id)
	if code := crictl("inspect", "--output", "go-template", "--template", "{{.status.exitCode}}", id); code != "143" {
		stdout, stderr, _ := c.CrictlLogs(id)
		t.Errorf("the stopped container's exit code: %s, want 143 (SIGTERM, passed on to the app); its output:\n%s%s", code, stdout, stderr)
	}
	crictl("rm", id)

	// A container pith cannot run (too little memory for the guest) ends with 125, and
	// says why in its log, as crictl logs shows it.
	smallJSON := filepath.Join(dir, "small.json")
	os.WriteFile(smallJSON, []byte(`{"metadata": {"name": "small"}, "image": {"image": "docker.io/pith-test/httphello:1"},
  "log_path": "small.log", "linux": {"resources": {"memory_limit_in_bytes": 33554432}}}`), 0o644)
	small := crictl("create", pod, smallJSON, podJSON)
	crictl("start", small)
	for deadline := time.Now().Add(time.Minute); crictl("inspect", "--output", "go-template", "--template", "{{.status.state}}", small) != "CONTAINER_EXITED"; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a container with 32 MiB still runs after a minute")
		}
	}
	if code := crictl("inspect", "--output", "go-template", "--template", "{{.status.exitCode}}", small); code != "125" {
		t.Errorf("a container with too little memory: exit code %s, want 125", code)
	}
	if _, stderr, err := c.CrictlLogs(small); err != nil || !strings.Contains(stderr, "pith: guest memory of 32 MiB") {
		t.Errorf("crictl logs of a container with too little memory: %v, standard error %q", err, stderr)
	}
	crictl("rm", small)
	crictl("stopp", pod)
	crictl("rmp", pod)
	if left := crictl("ps", "-a", "-q"); left != "" {
		t.Errorf("containers left: %q", left)
	}
	if left := crictl("pods", "-q"); left != "" {
		t.Errorf("pods left: %q", left)
	}
	// Nothing left of the pod: the shims and monitors have ended, the bundles and mounts
	// are gone, and so is the namespace that held the tap.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ps := processes("containerd-shim-pith-v2", "\x00--rootfs\x00")
		if len(ps) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("processes left: %q", ps)
			break
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), c.Dir) {
		t.Errorf("mounts left under containerd's directories:\n%s", mounts)
	}
	bundles, _ := filepath.Glob(filepath.Join(c.Dir, "state", "io.containerd.runtime.v2.task", "k8s.io", "*"))
	if len(bundles) > 0 {
		t.Errorf("bundles left: %v", bundles)
	}
	if netns, _ := filepath.Glob("/var/run/netns/cni-*"); len(netns) > 0 {
		t.Errorf("network namespaces left: %v", netns)
	}
}

// processes are the command lines (NUL-separated) of the processes that any of parts
// names: a program by its file's name (argv[0]'s last element), or, for a part holding a
// NUL, anything its command line holds (the machine may have no pgrep: the nested
// guest's busybox has none). A program's name found in another's arguments (a go test
// listing the shim's package, run beside) does not count.
func processes(parts ...string) []string {
	var found []string
	for _, d := range processDirs(parts...) {
		b, _ := os.ReadFile(d + "/cmdline")
		found = append(found, string(b))
	}
	return found
}

// processDirs are the /proc directories of the processes processes finds.
func processDirs(parts ...string) []string {
	var found []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/cmdline")
		if err != nil || d == fmt.Sprintf("/proc/%d", os.Getpid()) {
			continue
		}
		argv0, _, _ := strings.Cut(string(b), "\x00")
		for _, p := range parts {
			if strings.Contains(p, "\x00") && strings.Contains(string(b), p) || filepath.Base(argv0) == p {
				found = append(found, d)
				break
			}
		}
	}
	return found
}
