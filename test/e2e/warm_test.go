package e2e

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pithvm/pith/test/testenv"
)

// warmEnv turns warm starts on with a private socket directory, and stops the servers
// left at the end.
func warmEnv(t *testing.T) (env []string, dir string) {
	base, err := os.MkdirTemp("", "pw") // short: socket paths hold 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(base, "pith-"+strconv.Itoa(os.Getuid()), "warm")
	t.Cleanup(func() {
		// A successor may still be starting: stop servers until none has shown up for
		// half a second.
		for quiet := time.Now(); time.Since(quiet) < 500*time.Millisecond; time.Sleep(20 * time.Millisecond) {
			socks, _ := filepath.Glob(filepath.Join(dir, "*.sock"))
			for _, s := range socks {
				if pid := serverPID(s); pid > 0 {
					syscall.Kill(pid, syscall.SIGTERM)
					waitGone(pid)
					quiet = time.Now()
				}
			}
		}
		os.RemoveAll(base)
	})
	return []string{"PITH_WARM=1", "XDG_RUNTIME_DIR=" + base, "PITH_WARM_IDLE=60s"}, dir
}

// serverPID reads the server's process ID from its socket's name (KEY.PID.sock).
func serverPID(sock string) int {
	parts := strings.Split(filepath.Base(sock), ".")
	if len(parts) != 3 {
		return 0
	}
	pid, _ := strconv.Atoi(parts[1])
	return pid
}

// waitServer waits for exactly one warm server to be listening and returns its pid.
func waitServer(t *testing.T, dir string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		socks, _ := filepath.Glob(filepath.Join(dir, "*.sock"))
		if len(socks) > 1 {
			t.Fatalf("%d warm servers listening, want 1: %v", len(socks), socks)
		}
		if len(socks) == 1 {
			return serverPID(socks[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no warm server started")
	return 0
}

// waitGone waits for a process to end (a zombie has: its parent is gone, and init
// reaps it when it will).
func waitGone(pid int) bool {
	for i := 0; i < 300; i++ {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// With PITH_WARM=1, a run is served by a VM booted in advance, and behaves exactly as
// one that boots its own: output, exit status, arguments, environment, stdin, files.
func TestWarmRunBehavesLikeNative(t *testing.T) {
	testenv.RequireKVM(t)
	probe := testenv.Program(t, "probe")
	env, dir := warmEnv(t)
	// The first run boots its own VM and starts a server for the next.
	if r := testenv.Pith(t, env, "run", probe, "exit", "0"); r.Code != 0 {
		t.Fatalf("first run: exit %d, %s", r.Code, r.Stderr)
	}
	for _, tc := range []struct {
		name  string
		env   []string
		stdin string
		args  []string
		out   string // stdout wanted, where it is not the native run's
	}{
		{"args", nil, "", []string{"args", "a", "b c", ""}, ""},
		{"env", []string{"PROBE_VAR=hello world"}, "", []string{"env", "PROBE_VAR"}, ""},
		{"exit", nil, "", []string{"exit", "7"}, ""},
		{"stdout and stderr", nil, "", []string{"stderr"}, ""},
		{"recovered nil dereference", nil, "", []string{"nil"}, ""},
		{"death by signal", nil, "", []string{"killself"}, ""},
		{"stdin", nil, "hi there\nsecond line\n", []string{"cat"}, ""},
		{"files in the project", nil, "", []string{"read", filepath.Join(testenv.Root(), "go.mod")}, ""},
		{"other programs through os/exec", nil, "", []string{"spawn"}, ""},
		{"arguments that are not UTF-8", nil, "", []string{"args", "\xff\xfe", "caf\xe9"}, ""},
		{"identity calls answered in the app", nil, "", []string{"ids"}, "1 0 0 0 0 0\n1 0 0 0 0 0\n"},
		{"signals to a thread blocked in a system call", nil, "", []string{"eintr"}, ""},
		{"unmapped memory handed to system calls", nil, "", []string{"efault"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := native(t, probe, tc.env, tc.args...)
			if tc.stdin != "" {
				want.Stdout = tc.stdin
			}
			if tc.out != "" {
				want.Stdout = tc.out
			}
			server := waitServer(t, dir)
			pith, kernel := testenv.Build(t)
			c := exec.Command(pith, append([]string{"run", probe}, tc.args...)...)
			c.Env = append(append(os.Environ(), "PITH_KERNEL="+kernel, "PITH_DEADLINE=60s"), append(env, tc.env...)...)
			c.Stdin = strings.NewReader(tc.stdin)
			var stdout, stderr strings.Builder
			c.Stdout, c.Stderr = &stdout, &stderr
			c.Run()
			if code := c.ProcessState.ExitCode(); code != want.Code || stdout.String() != want.Stdout || stderr.String() != want.Stderr {
				t.Errorf("warm pith run: exit %d, stdout %q, stderr %q\nnative:        exit %d, stdout %q, stderr %q",
					code, stdout.String(), stderr.String(), want.Code, want.Stdout, want.Stderr)
			}
			if !waitGone(server) {
				t.Errorf("warm server %d still running: the run did not go to it", server)
			}
		})
	}
}

// Signals reach the app in a warm VM, and a run killed outright takes its VM with it.
func TestWarmRunSignals(t *testing.T) {
	testenv.RequireKVM(t)
	probe := testenv.Program(t, "probe")
	pith, kernel := testenv.Build(t)
	env, dir := warmEnv(t)
	testenv.Pith(t, env, "run", probe, "exit", "0")
	start := func() (*exec.Cmd, io.ReadCloser, int) {
		server := waitServer(t, dir)
		c := exec.Command(pith, "run", probe, "notify")
		c.Env = append(append(os.Environ(), "PITH_KERNEL="+kernel, "PITH_DEADLINE=60s"), env...)
		out, _ := c.StdoutPipe()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 6)
		if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "ready\n" {
			t.Fatalf("app did not start: %q %v", buf, err)
		}
		return c, out, server
	}
	c, out, _ := start()
	c.Process.Signal(syscall.SIGINT)
	rest, _ := io.ReadAll(out)
	if err := c.Wait(); err != nil || string(rest) != "got interrupt\n" {
		t.Errorf("SIGINT: exit %v, stdout %q; want exit 0 and \"got interrupt\\n\"", err, rest)
	}
	c, _, server := start()
	c.Process.Kill()
	c.Wait()
	if !waitGone(server) {
		t.Errorf("warm server %d still running after its client was killed", server)
	}
}

// A server that died leaves its socket behind; a run then boots its own VM.
func TestWarmRunStaleServer(t *testing.T) {
	testenv.RequireKVM(t)
	probe := testenv.Program(t, "probe")
	env, dir := warmEnv(t)
	testenv.Pith(t, env, "run", probe, "exit", "0")
	server := waitServer(t, dir)
	if r := testenv.Pith(t, env, "doctor"); !strings.Contains(r.Stdout, "on; 1 warm VMs") {
		t.Errorf("pith doctor with one server up:\n%s", r.Stdout)
	}
	syscall.Kill(server, syscall.SIGKILL)
	waitGone(server)
	if r := testenv.Pith(t, env, "doctor"); !strings.Contains(r.Stdout, "on; 0 warm VMs") {
		t.Errorf("pith doctor once the server was killed:\n%s", r.Stdout)
	}
	if r := testenv.Pith(t, env, "run", probe, "exit", "3"); r.Code != 3 || r.Stderr != "" {
		t.Errorf("run after a dead server: exit %d, stderr %q; want 3 and nothing", r.Code, r.Stderr)
	}
}

// What a server must not keep or change: the caller's other descriptors (a lock held
// open for its run), a long stdin read in full, death by SIGPIPE on a closed stdout.
func TestWarmRunEdges(t *testing.T) {
	testenv.RequireKVM(t)
	probe := testenv.Program(t, "probe")
	pith, kernel := testenv.Build(t)
	env, dir := warmEnv(t)
	command := func(args ...string) *exec.Cmd {
		c := exec.Command(pith, append([]string{"run", probe}, args...)...)
		c.Env = append(append(os.Environ(), "PITH_KERNEL="+kernel, "PITH_DEADLINE=60s"), env...)
		return c
	}
	// A descriptor the caller passes on must be closed once the run ends: the server
	// this run starts does not keep it.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := command("exit", "0")
	c.ExtraFiles = []*os.File{w}
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	waitServer(t, dir)
	eof := make(chan error, 1)
	go func() { _, err := r.Read(make([]byte, 1)); eof <- err }()
	select {
	case err := <-eof:
		if err != io.EOF {
			t.Errorf("reading the pipe: %v, want EOF", err)
		}
	case <-time.After(3 * time.Second):
		t.Error("a warm server keeps the caller's descriptor 3 open")
	}
	r.Close()

	// 20 MiB through stdin, all of it.
	waitServer(t, dir)
	c = command("cat")
	c.Stdin = strings.NewReader(strings.Repeat("x", 20<<20))
	out, err := c.Output()
	if err != nil || len(out) != 20<<20 {
		t.Errorf("cat of 20 MiB: %d bytes, %v", len(out), err)
	}

	// --env-file read from a pipe: by this pith, once.
	waitServer(t, dir)
	c = exec.Command(pith, "run", "--env-file", "/dev/stdin", probe, "env", "FROM_PIPE")
	c.Env = append(append(os.Environ(), "PITH_KERNEL="+kernel, "PITH_DEADLINE=60s"), env...)
	c.Stdin = strings.NewReader("FROM_PIPE=piped\n")
	if out, err := c.Output(); err != nil || string(out) != "piped\n" {
		t.Errorf("--env-file /dev/stdin: %q, %v; want \"piped\\n\"", out, err)
	}

	// A closed stderr: pith dies of SIGPIPE, and what went to stdout before is all there.
	waitServer(t, dir)
	stdoutFile := filepath.Join(t.TempDir(), "out")
	f, _ := os.Create(stdoutFile)
	c = command("stderr")
	c.Stdout = f
	er, ew, _ := os.Pipe()
	er.Close()
	c.Stderr = ew
	c.Run()
	ew.Close()
	f.Close()
	got, _ := os.ReadFile(stdoutFile)
	if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGPIPE || string(got) != "to stdout\n" {
		t.Errorf("pith run with its stderr closed: %v, stdout %q; want killed by SIGPIPE and \"to stdout\\n\"", c.ProcessState, got)
	}

	// A reader that goes away: pith dies of SIGPIPE, as it does booting its own VM.
	waitServer(t, dir)
	c = command("cat")
	c.Stdin = strings.NewReader(strings.Repeat("y\n", 1<<20))
	pr, pw, _ := os.Pipe()
	c.Stdout = pw
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	pr.Read(make([]byte, 2))
	pr.Close()
	c.Wait()
	if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGPIPE {
		t.Errorf("pith run with its stdout closed: %v, want killed by SIGPIPE", c.ProcessState)
	}
}

// A server whose socket a run renamed but never connected to (it died in between) ends
// by itself, and is not counted as alive.
func TestWarmRunAbandonedClaim(t *testing.T) {
	testenv.RequireKVM(t)
	probe := testenv.Program(t, "probe")
	env, dir := warmEnv(t)
	testenv.Pith(t, env, "run", probe, "exit", "0")
	server := waitServer(t, dir)
	socks, _ := filepath.Glob(filepath.Join(dir, "*.sock"))
	if err := os.Rename(socks[0], socks[0]+".claimed-999999"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !waitGone(server) {
		if time.Now().After(deadline) {
			t.Fatalf("warm server %d still running after its claim was abandoned", server)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}
