package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Containerd is a containerd daemon of a test's own: its root, state, socket and
// configuration in a temporary directory, pith's shim on its PATH.
type Containerd struct {
	Dir     string // its root, state, socket and log
	Address string // its socket
	Log     string // what it printed
	cmd     *exec.Cmd
}

// Namespace is the containerd namespace the tests work in.
const Namespace = "pith-test"

// StartContainerd starts Debian's containerd with a private root, state directory and
// socket, and pith's binaries (pith, containerd-shim-pith-v2) first on its PATH. extra is
// more of its configuration (TOML). It is stopped, and what runs under it killed, when
// the test ends.
func StartContainerd(t *testing.T, extra string) *Containerd {
	t.Helper()
	for _, b := range []string{"containerd", "ctr"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s is needed (tools/test.sh installs the Debian package containerd): %v", b, err)
		}
	}
	pith, _ := Build(t)
	// A short path: a unix socket's is at most 107 bytes.
	dir, err := os.MkdirTemp("", "ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Containerd{Dir: dir, Address: filepath.Join(dir, "c.sock"), Log: filepath.Join(dir, "containerd.log")}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = %q
[ttrpc]
  address = %q
# containerd 2.x's transfer service (ctr images import) unpacks for these only.
[[plugins."io.containerd.transfer.v1.local".unpack_config]]
  platform = "linux/amd64"
  snapshotter = "native"
%s
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.Address, c.Address+".ttrpc", extra)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(c.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	c.cmd = exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	c.cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(pith)+":"+os.Getenv("PATH"))
	c.cmd.Stdout, c.cmd.Stderr = log, log
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stop)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := c.Ctr("version"); err == nil {
			return c
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(c.Log)
			t.Fatalf("containerd did not come up in 30 s:\n%s", b)
		}
	}
}

// Ctr runs ctr against the daemon, in Namespace, and returns its output (standard
// output and error).
func (c *Containerd) Ctr(args ...string) (string, error) {
	return c.CtrIn(Namespace, args...)
}

// CtrIn runs ctr against the daemon in namespace ns.
func (c *Containerd) CtrIn(ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ctr", append([]string{"--address", c.Address, "--namespace", ns}, args...)...).CombinedOutput()
	return string(out), err
}

// Crictl runs crictl against the daemon's CRI plugin and returns its standard output;
// an error carries its standard error.
func (c *Containerd) Crictl(args ...string) (string, error) {
	out, stderr, err := c.crictl(args...)
	if err != nil {
		err = fmt.Errorf("%w: %s", err, stderr)
	}
	return out, err
}

// CrictlLogs is crictl logs of container id: its standard output and error, as crictl
// prints them on its own.
func (c *Containerd) CrictlLogs(id string) (stdout, stderr string, err error) {
	return c.crictl("logs", id)
}

func (c *Containerd) crictl(args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	endpoint := "unix://" + c.Address
	cmd := exec.CommandContext(ctx, "crictl", append([]string{"--runtime-endpoint", endpoint, "--image-endpoint", endpoint, "--timeout", "2m"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	return string(out), stderr.String(), err
}

// CtrCommand is ctr with args against the daemon, to start.
func (c *Containerd) CtrCommand(args ...string) *exec.Cmd {
	return exec.Command("ctr", append([]string{"--address", c.Address, "--namespace", Namespace}, args...)...)
}

// stop kills every task left, stops the daemon and removes its directory.
func (c *Containerd) stop() {
	if out, err := c.Ctr("tasks", "ls", "-q"); err == nil {
		for _, id := range strings.Fields(out) {
			c.Ctr("tasks", "kill", "-s", "KILL", id)
			c.Ctr("tasks", "delete", "-f", id)
		}
	}
	c.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
	exec.Command("umount", "-R", filepath.Join(c.Dir, "root")).Run()
	os.RemoveAll(c.Dir)
}
