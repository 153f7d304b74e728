// Command containerd compares pith's shim (io.containerd.pith.v2) with runc
// (io.containerd.runc.v2) under one containerd, side by side in one run: the time from
// `ctr run --rm` of a hello image to its exit, and the time from a pod's RunPodSandbox
// (crictl runp) to the first answer of its net/http container at the pod IP CNI gave.
// Each is measured -n times per runtime, the runtimes taking turns. It starts its own
// containerd (private root, state, socket; the native snapshotter; a CNI bridge) and
// removes everything at the end.
//
//	make && go build -o /tmp/hello ./bench/hello && go build -o /tmp/httphello ./bench/apps/httphello &&
//	  go run ./bench/containerd -bin bin -hello /tmp/hello -server /tmp/httphello -n 10
//
// It needs containerd, ctr, runc, crictl and CNI's bridge, host-local and loopback
// plugins (tools/test.sh installs them), and root.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

var (
	bin     = flag.String("bin", "bin", "the directory with pith, pith-kernel and containerd-shim-pith-v2")
	hello   = flag.String("hello", "", "a static hello program (bench/hello)")
	server  = flag.String("server", "", "a static net/http server on :8080 (bench/apps/httphello)")
	n       = flag.Int("n", 10, "runs of each measurement per runtime")
	cniBin  = flag.String("cni", "/usr/lib/cni", "CNI's plugin directory")
	noPivot = flag.Bool("no-pivot", false, "runc without pivot_root (a root file system in RAM, as the nested guest's, needs it)")
)

func main() {
	flag.Parse()
	if *hello == "" || *server == "" {
		fmt.Fprintln(os.Stderr, "usage: containerd -bin DIR -hello PROGRAM -server PROGRAM [-n N]")
		os.Exit(2)
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/containerd:", err)
		os.Exit(1)
	}
}

// daemon is the benchmark's containerd.
type daemon struct {
	dir, sock string
	cmd       *exec.Cmd
}

func run() (err error) {
	dir, err := os.MkdirTemp("", "bench-ctrd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pith, _ := filepath.Abs(filepath.Join(*bin, "pith"))

	// The images: pith build of each program; the server's again as the pods' pause.
	data := filepath.Join(dir, "images")
	for _, b := range [][]string{
		{"build", "-t", "bench/hello:1", *hello}, {"build", "-t", "bench/server:1", *server},
		{"tag", "bench/server:1", "bench/pause:1"},
		{"save", "-o", filepath.Join(dir, "images.tar"), "bench/hello:1", "bench/server:1", "bench/pause:1"},
	} {
		c := exec.Command(pith, b...)
		c.Env = append(os.Environ(), "PITH_DATA="+data)
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("pith %s: %v: %s", strings.Join(b, " "), err, out)
		}
	}

	d, err := startContainerd(dir, filepath.Dir(pith))
	if err != nil {
		return err
	}
	defer d.stop()
	defer func() {
		if err != nil { // what containerd said of it
			b, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, "level=error") || strings.Contains(line, "level=warn") {
					fmt.Fprintln(os.Stderr, line)
				}
			}
		}
	}()
	if _, err := d.ctr("images", "import", "--snapshotter", "native", filepath.Join(dir, "images.tar")); err != nil {
		return err
	}

	runtimes := []string{"runc", "pith"}
	helloTimes := map[string][]time.Duration{}
	podTimes := map[string][]time.Duration{}
	for i := range *n {
		for _, rt := range runtimes {
			t, err := d.ctrRunHello(rt, fmt.Sprintf("hello-%s-%d", rt, i))
			if err != nil {
				return err
			}
			helloTimes[rt] = append(helloTimes[rt], t)
		}
	}
	for i := range *n {
		for _, rt := range runtimes {
			t, err := d.podToFirstAnswer(rt, fmt.Sprintf("web-%s-%d", rt, i))
			if err != nil {
				return err
			}
			podTimes[rt] = append(podTimes[rt], t)
		}
	}
	fmt.Printf("containerd %s, %d runs each (median, min, max)\n", d.version(), *n)
	for _, m := range []struct {
		what  string
		times map[string][]time.Duration
	}{{"ctr run --rm hello, to its exit", helloTimes}, {"pod: crictl runp to the first HTTP answer at the pod IP", podTimes}} {
		fmt.Println(m.what)
		for _, rt := range runtimes {
			ts := slices.Clone(m.times[rt])
			slices.Sort(ts)
			fmt.Printf("  %-5s %8.1f ms  %8.1f  %8.1f\n", rt, ms(ts[len(ts)/2]), ms(ts[0]), ms(ts[len(ts)-1]))
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func startContainerd(dir, pithBin string) (*daemon, error) {
	d := &daemon{dir: dir, sock: filepath.Join(dir, "c.sock")}
	netd := filepath.Join(dir, "net.d")
	os.MkdirAll(netd, 0o755)
	conf := `{"cniVersion": "0.4.0", "name": "bench", "plugins": [{"type": "bridge", "bridge": "benchcni0",
  "isGateway": true, "ipMasq": false, "ipam": {"type": "host-local", "subnet": "10.89.0.0/16",
  "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "` + filepath.Join(dir, "ipam") + `"}}]}`
	if err := os.WriteFile(filepath.Join(netd, "10-bench.conflist"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[ttrpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/bench/pause:1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        NoPivotRoot = %v
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.pith]
      runtime_type = "io.containerd.pith.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), d.sock, d.sock+".ttrpc", *noPivot, *cniBin, netd)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		return nil, err
	}
	d.cmd = exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	d.cmd.Env = append(os.Environ(), "PATH="+pithBin+":"+os.Getenv("PATH"))
	d.cmd.Stdout, d.cmd.Stderr = log, log
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := d.ctr("version"); err == nil {
			return d, nil
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, fmt.Errorf("containerd did not come up; see %s", log.Name())
		}
	}
}

func (d *daemon) ctr(args ...string) (string, error) {
	out, err := exec.Command("ctr", append([]string{"--address", d.sock, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ctr %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (d *daemon) crictl(args ...string) (string, error) {
	ep := "unix://" + d.sock
	c := exec.Command("crictl", append([]string{"--runtime-endpoint", ep, "--image-endpoint", ep, "--timeout", "2m"}, args...)...)
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return "", fmt.Errorf("crictl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

func (d *daemon) version() string {
	out, _ := exec.Command("containerd", "--version").Output()
	if f := strings.Fields(string(out)); len(f) >= 3 {
		return f[2]
	}
	return "?"
}

// ctrRunHello times ctr run --rm of the hello image with runtime rt, to its exit.
func (d *daemon) ctrRunHello(rt, id string) (time.Duration, error) {
	args := []string{"run", "--rm", "--runtime", "io.containerd." + rt + ".v2", "--snapshotter", "native"}
	if rt == "runc" && *noPivot {
		args = append(args, "--no-pivot")
	}
	t0 := time.Now()
	out, err := d.ctr(append(args, "docker.io/bench/hello:1", id)...)
	t := time.Since(t0)
	if err != nil {
		return 0, err
	}
	if strings.TrimSpace(out) != "hello" {
		return 0, fmt.Errorf("%s: ctr run printed %q", rt, out)
	}
	return t, nil
}

// podToFirstAnswer times a pod with runtime handler rt from crictl runp to the first
// HTTP answer of its server container at the pod IP, then removes the pod.
func (d *daemon) podToFirstAnswer(rt, name string) (time.Duration, error) {
	podJSON := filepath.Join(d.dir, name+"-pod.json")
	os.WriteFile(podJSON, []byte(`{"metadata": {"name": "`+name+`", "namespace": "bench", "uid": "`+name+`"}, "hostname": "`+name+`",
  "dns_config": {"servers": ["192.0.2.53"]}, "log_directory": "`+filepath.Join(d.dir, "logs", name)+`", "linux": {}}`), 0o644)
	ctrJSON := filepath.Join(d.dir, name+"-container.json")
	os.WriteFile(ctrJSON, []byte(`{"metadata": {"name": "server"}, "image": {"image": "docker.io/bench/server:1"},
  "log_path": "server.log", "linux": {}}`), 0o644)
	t0 := time.Now()
	pod, err := d.crictl("runp", "--runtime", rt, podJSON)
	if err != nil {
		return 0, err
	}
	defer func() {
		d.crictl("stopp", pod)
		d.crictl("rmp", "-f", pod)
	}()
	id, err := d.crictl("create", pod, ctrJSON, podJSON)
	if err != nil {
		return 0, err
	}
	if _, err := d.crictl("start", id); err != nil {
		return 0, err
	}
	ip, err := d.crictl("inspectp", "--output", "go-template", "--template", "{{.status.network.ip}}", pod)
	if err != nil {
		return 0, err
	}
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		resp, err := client.Get("http://" + ip + ":8080/")
		if err != nil {
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(t0), nil
	}
	logs, _ := d.crictl("logs", id)
	state, _ := d.crictl("inspect", "--output", "go-template", "--template", "{{.status.state}} {{.status.exitCode}} {{.status.reason}} {{.status.message}}", id)
	return 0, fmt.Errorf("%s: pod %s never answered at %s; its container is %s, and printed:\n%s", rt, name, ip, state, logs)
}

func (d *daemon) stop() {
	if out, err := d.crictl("pods", "-q"); err == nil {
		for _, p := range strings.Fields(out) {
			d.crictl("stopp", p)
			d.crictl("rmp", "-f", p)
		}
	}
	d.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
	}
}
