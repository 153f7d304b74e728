package cli

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pithvm/pith/host/instance"
)

// pithMain runs pith with args in this process and returns its exit status and output.
func pithMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	saved := [2]*os.File{os.Stdout, os.Stderr}
	os.Stdout, os.Stderr = outW, errW
	done := make(chan [2]string)
	go func() {
		o, _ := io.ReadAll(outR)
		e, _ := io.ReadAll(errR)
		done <- [2]string{string(o), string(e)}
	}()
	code = Main(args)
	os.Stdout, os.Stderr = saved[0], saved[1]
	outW.Close()
	errW.Close()
	out := <-done
	return code, out[0], out[1]
}

// fakeStore is a runtime directory of the test's own.
func fakeStore(t *testing.T) *instance.Store {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("PITH_RUNTIME", dir)
	s, err := instance.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeUnikernel creates a unikernel with state st; with a monitor script, sh runs it as
// its monitor, holding its lock, from when it prints "ready".
func fakeUnikernel(t *testing.T, s *instance.Store, name string, st instance.State, monitor string) *instance.Instance {
	t.Helper()
	inst, lk, err := s.Create(instance.Config{Name: name, App: "/bin/" + name, AppArgs: []string{"-x"}})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Release()
	if monitor != "" {
		cmd := exec.Command("sh", "-c", monitor)
		cmd.ExtraFiles = []*os.File{lk.File()}
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if b := make([]byte, 6); func() bool { n, _ := io.ReadFull(out, b); return n != 6 || string(b) != "ready\n" }() {
			t.Fatalf("the fake monitor did not say ready")
		}
		go cmd.Wait() // reaped as it ends, so that it does not linger as a zombie
		t.Cleanup(func() { cmd.Process.Kill() })
		st.Pid = cmd.Process.Pid
	}
	if err := inst.SetState(st); err != nil {
		t.Fatal(err)
	}
	return inst
}

func TestPsShowsWhatRunsAndWithAllWhatExited(t *testing.T) {
	s := fakeStore(t)
	now := time.Now()
	fakeUnikernel(t, s, "made", instance.State{Status: instance.StatusCreated}, "")
	fakeUnikernel(t, s, "done", instance.State{Status: instance.StatusExited, ExitCode: 3, StartedAt: now.Add(-time.Minute), FinishedAt: now.Add(-5 * time.Second)}, "")
	up := fakeUnikernel(t, s, "up", instance.State{Status: instance.StatusRunning, StartedAt: now.Add(-3 * time.Second), Ports: []string{"0.0.0.0:8080->80/tcp"}}, "echo ready; exec sleep 60")

	_, out, _ := pithMain(t, "ps")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !regexp.MustCompile(`^ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$`).MatchString(lines[0]) {
		t.Fatalf("ps:\n%s", out)
	}
	if !regexp.MustCompile(`^` + up.ID[:12] + `\s+/bin/up\s+"up -x"\s+Less than a second ago\s+Up 3 seconds\s+0\.0\.0\.0:8080->80/tcp\s+up$`).MatchString(lines[1]) {
		t.Errorf("ps row: %q", lines[1])
	}
	_, out, _ = pithMain(t, "ps", "-a", "--format", "{{.Names}}: {{.Status}}")
	for _, want := range []string{"up: Up 3 seconds\n", "done: Exited (3) 5 seconds ago\n", "made: Created\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("ps -a lacks %q:\n%s", want, out)
		}
	}
	_, out, _ = pithMain(t, "ps", "-a", "--format", "table {{.Names}}\t{{.Status}}")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !regexp.MustCompile(`^NAMES\s+STATUS$`).MatchString(lines[0]) || !strings.Contains(out, "\ndone    Exited (3) 5 seconds ago\n") {
		t.Errorf("ps --format table: want a header and aligned columns:\n%s", out)
	}
	_, out, _ = pithMain(t, "ps", "-q")
	if out != up.ID[:12]+"\n" {
		t.Errorf("ps -q = %q", out)
	}
	_, out, _ = pithMain(t, "ps", "-a", "--format", "json")
	if n := strings.Count(out, "\n"); n != 3 {
		t.Errorf("ps -a --format json: %d lines:\n%s", n, out)
	}
	var row psRow
	if err := json.Unmarshal([]byte(strings.Split(out, "\n")[0]), &row); err != nil || row.Names == "" {
		t.Errorf("ps --format json is not JSON objects: %v", err)
	}
}

// A monitor whose app ignores SIGTERM is killed after -t; its exit is then 137.
func TestStopKillsAfterTheTimeout(t *testing.T) {
	s := fakeStore(t)
	fakeUnikernel(t, s, "stubborn", instance.State{Status: instance.StatusRunning, StartedAt: time.Now()}, "trap '' TERM; echo ready; while :; do sleep 0.1; done")
	start := time.Now()
	code, out, errOut := pithMain(t, "stop", "-t", "1", "stubborn")
	took := time.Since(start)
	if code != 0 || out != "stubborn\n" {
		t.Fatalf("stop: %d %q %q", code, out, errOut)
	}
	if took < time.Second || took > 5*time.Second {
		t.Errorf("stop -t 1 took %v", took)
	}
	inst, _ := s.Get("stubborn")
	if inst.State.Status != instance.StatusExited || inst.State.ExitCode != 137 || inst.Live() {
		t.Errorf("after stop: %+v", inst.State)
	}
	if _, err := os.Stat(filepath.Join(inst.Dir, "stop-requested")); err != nil {
		t.Errorf("stop did not mark a manual stop (a restart policy would start it again): %v", err)
	}
	if code, _, errOut := pithMain(t, "stop", "stubborn"); code != 0 {
		t.Errorf("stop of a stopped one: %d %q", code, errOut)
	}
	if code, _, errOut := pithMain(t, "kill", "stubborn"); code == 0 || !strings.Contains(errOut, "is not running") {
		t.Errorf("kill of a stopped one: %d %q", code, errOut)
	}
}

func TestRmNeedsForceForARunningOne(t *testing.T) {
	s := fakeStore(t)
	fakeUnikernel(t, s, "busy", instance.State{Status: instance.StatusRunning, StartedAt: time.Now()}, "echo ready; exec sleep 60")
	fakeUnikernel(t, s, "idle", instance.State{Status: instance.StatusExited}, "")
	code, out, errOut := pithMain(t, "rm", "busy", "idle")
	if code == 0 || out != "idle\n" || !strings.Contains(errOut, "cannot remove busy: it is running") {
		t.Errorf("rm busy idle: %d %q %q", code, out, errOut)
	}
	if code, out, errOut := pithMain(t, "rm", "-f", "busy"); code != 0 || out != "busy\n" {
		t.Errorf("rm -f busy: %d %q %q", code, out, errOut)
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Errorf("%d left", len(list))
	}
	if code, _, errOut := pithMain(t, "rm", "busy"); code == 0 || !strings.Contains(errOut, "no such unikernel: busy") {
		t.Errorf("rm of a removed one: %d %q", code, errOut)
	}
}

func TestLogsTailTimestampsSinceAndStreams(t *testing.T) {
	s := fakeStore(t)
	inst := fakeUnikernel(t, s, "talker", instance.State{Status: instance.StatusExited}, "")
	w := instance.NewLogWriter(inst.LogPath(), 1<<20, 3)
	w.Stream("stdout").Write([]byte("one\ntwo\n"))
	w.Stream("stderr").Write([]byte("warn\n"))
	w.Stream("stdout").Write([]byte("three\n"))
	w.Close()
	if _, out, errOut := pithMain(t, "logs", "talker"); out != "one\ntwo\nthree\n" || errOut != "warn\n" {
		t.Errorf("logs: %q, %q", out, errOut)
	}
	if _, out, errOut := pithMain(t, "logs", "--tail", "2", "talker"); out != "three\n" || errOut != "warn\n" {
		t.Errorf("logs --tail 2: %q, %q", out, errOut)
	}
	if _, out, _ := pithMain(t, "logs", "-t", "--tail", "1", "talker"); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT[\d:.]+(Z|[-+]\d\d:\d\d) three\n$`).MatchString(out) {
		t.Errorf("logs -t: %q", out)
	}
	if _, out, errOut := pithMain(t, "logs", "--since", "1s", "talker"); out != "one\ntwo\nthree\n" || errOut != "warn\n" {
		t.Errorf("logs --since 1s: %q %q", out, errOut)
	}
	if _, out, _ := pithMain(t, "logs", "--since", "2099-01-01T00:00:00Z", "talker"); out != "" {
		t.Errorf("logs --since the future: %q", out)
	}
	if code, _, errOut := pithMain(t, "logs", "--since", "yesterday", "talker"); code == 0 || strings.Count(errOut, "\n") != 1 {
		t.Errorf("logs --since yesterday: %d %q", code, errOut)
	}
	// -f of one that is not running prints what there is and returns.
	if _, out, _ := pithMain(t, "logs", "-f", "talker"); out != "one\ntwo\nthree\n" {
		t.Errorf("logs -f of an exited one: %q", out)
	}
}

func TestWaitAndInspectOfAnExitedOne(t *testing.T) {
	s := fakeStore(t)
	fin := time.Now().Add(-time.Second).UTC().Truncate(time.Second)
	inst := fakeUnikernel(t, s, "ended", instance.State{Status: instance.StatusExited, ExitCode: 42, StartedAt: fin.Add(-time.Minute), FinishedAt: fin}, "")
	if _, out, _ := pithMain(t, "wait", "ended"); out != "42\n" {
		t.Errorf("wait: %q", out)
	}
	_, out, _ := pithMain(t, "inspect", inst.ID[:8])
	var got []struct {
		ID    string `json:"Id"`
		Name  string
		Path  string
		Args  []string
		State struct {
			Status     string
			Running    bool
			ExitCode   int
			FinishedAt time.Time
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
		t.Fatalf("inspect: %v:\n%s", err, out)
	}
	g := got[0]
	if g.ID != inst.ID || g.Name != "/ended" || g.Path != "/bin/ended" || len(g.Args) != 1 || g.State.Status != "exited" || g.State.Running || g.State.ExitCode != 42 || !g.State.FinishedAt.Equal(fin) {
		t.Errorf("inspect: %+v", g)
	}
	if code, out, _ := pithMain(t, "inspect", "nothing"); code == 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("inspect of nothing: %d %q", code, out)
	}
}
