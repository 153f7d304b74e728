package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pithvm/pith/test/testenv"
)

// freePort is a TCP port on 127.0.0.1 nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// A server in the guest answers on the host through -p, with no root.
func TestRunPublishesPorts(t *testing.T) {
	testenv.RequireKVM(t)
	pith, kernel := testenv.Build(t)
	probe := testenv.Program(t, "probe")
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, pith, "run", "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), probe, "serve")
	c.Env = append(os.Environ(), "PITH_KERNEL="+kernel, "PITH_DEADLINE=100s")
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	c.WaitDelay = 10 * time.Second
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (string, error) {
		client := &http.Client{Timeout: 10 * time.Second}
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	var body string
	var err error
	for start := time.Now(); time.Since(start) < 60*time.Second; time.Sleep(100 * time.Millisecond) {
		if body, err = get("/hello"); err == nil {
			break
		}
	}
	if err != nil || body != "hello /hello" {
		c.Process.Kill()
		c.Wait()
		t.Fatalf("GET /hello through -p: %q, %v\nstdout: %s\nstderr: %s", body, err, stdout.String(), stderr.String())
	}
	if body, err = get("/quit"); err != nil || body != "hello /quit" {
		t.Errorf("GET /quit: %q, %v", body, err)
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("pith run -p: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "served /hello\n") || stderr.Len() != 0 {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

// A program in the guest reaches the host's servers through the gateway, and a guest
// with --net none has no route there.
func TestRunReachesTheHost(t *testing.T) {
	testenv.RequireKVM(t)
	probe := testenv.Program(t, "probe")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "host saw %s", r.URL.Path)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	at := fmt.Sprintf("10.0.2.2:%d", ln.Addr().(*net.TCPAddr).Port)
	r := testenv.Pith(t, nil, "run", probe, "fetch", at)
	if r.Code != 0 || r.Stdout != "200 host saw /from-the-guest\n" {
		t.Errorf("fetch from the guest: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	r = testenv.Pith(t, nil, "run", "--net", "none", probe, "fetch", at)
	if r.Code != 0 || r.Stdout != "get failed; unreachable: true\n" {
		t.Errorf("fetch with --net none: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}

// A host port already taken, or a -p that does not parse, is refused before the guest
// runs, in one line that names it.
func TestRunRefusesPortsItCannotPublish(t *testing.T) {
	testenv.RequireKVM(t)
	probe := testenv.Program(t, "probe")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-p", fmt.Sprintf("127.0.0.1:%d:80", busy)}, fmt.Sprintf("port %d is already in use", busy)},
		{[]string{"-p", "8080:80/sctp"}, "tcp or udp"},
		{[]string{"--net", "none", "-p", "80"}, "no ports to publish"},
		{[]string{"--net", "bridge"}, "pith knows user"},
	} {
		r := testenv.Pith(t, nil, append(append([]string{"run"}, tc.args...), probe, "args")...)
		if r.Code == 0 || r.Stdout != "" || !strings.Contains(r.Stderr, tc.want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("pith run %v: exit %d, stdout %q, stderr %q; want one line containing %q", tc.args, r.Code, r.Stdout, r.Stderr, tc.want)
		}
	}
}

// --hostname and --add-host name the guest and its peers as Docker's do: uname,
// /etc/hostname and /etc/hosts agree.
func TestRunNamesHosts(t *testing.T) {
	testenv.RequireKVM(t)
	probe := testenv.Program(t, "probe")
	r := testenv.Pith(t, nil, "run", "--hostname", "web1", "--add-host", "db:10.9.8.7", "--add-host", "v6db=fd00::7",
		"--add-host", "host.docker.internal:host-gateway", probe, "names", "web1", "db", "v6db", "host.docker.internal", "localhost")
	want := `hostname: web1 <nil>
/etc/hostname: "web1\n" <nil>
web1 [10.0.2.15] <nil>
db [10.9.8.7] <nil>
v6db [fd00::7] <nil>
host.docker.internal [10.0.2.2] <nil>
localhost [127.0.0.1 ::1] <nil>
`
	if r.Code != 0 || r.Stdout != want {
		t.Errorf("pith run --hostname --add-host: exit %d, stderr %q, stdout\n%s\nwant\n%s", r.Code, r.Stderr, r.Stdout, want)
	}
	host, _ := os.Hostname()
	r = testenv.Pith(t, nil, "run", "--net", "none", probe, "names", host)
	want = fmt.Sprintf("hostname: %s <nil>\n/etc/hostname: %q <nil>\n%s [127.0.1.1] <nil>\n", host, host+"\n", host)
	if r.Code != 0 || r.Stdout != want {
		t.Errorf("pith run --net none: exit %d, stderr %q, stdout\n%s\nwant\n%s", r.Code, r.Stderr, r.Stdout, want)
	}
	for _, tc := range []struct{ flag, want string }{
		{"--hostname=-bad", "--hostname -bad: a host name is"},
		{"--add-host=db", "give NAME:IP"},
		{"--add-host=db:nowhere", "not an IP address"},
	} {
		r := testenv.Pith(t, nil, "run", tc.flag, probe, "args")
		if r.Code == 0 || !strings.Contains(r.Stderr, tc.want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("pith run %s: exit %d, stderr %q; want one line containing %q", tc.flag, r.Code, r.Stderr, tc.want)
		}
	}
}
