package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pithvm/pith/test/testenv"
)

// lifecycle runs pith commands against a runtime directory of the test's own.
type lifecycle struct {
	t  *testing.T
	rt string
}

func newLifecycle(t *testing.T) *lifecycle {
	testenv.RequireKVM(t)
	l := &lifecycle{t: t, rt: filepath.Join(t.TempDir(), "rt")}
	t.Cleanup(func() {
		// Whatever a failed test left running goes; then nothing may be left.
		if r := l.pith("ps", "-aq"); r.Stdout != "" {
			l.pith(append([]string{"rm", "-f"}, strings.Fields(r.Stdout)...)...)
		}
		l.assertNothingLeft()
	})
	return l
}

func (l *lifecycle) pith(args ...string) testenv.Result {
	l.t.Helper()
	return testenv.Pith(l.t, []string{"PITH_RUNTIME=" + l.rt}, args...)
}

// ok runs a command that must succeed and returns its standard output.
func (l *lifecycle) ok(args ...string) string {
	l.t.Helper()
	r := l.pith(args...)
	if r.Code != 0 {
		l.t.Fatalf("pith %v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// runD starts a unikernel with run -d and returns its ID.
func (l *lifecycle) runD(args ...string) string {
	l.t.Helper()
	id := strings.TrimSpace(l.ok(append([]string{"run", "-d"}, args...)...))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		l.t.Fatalf("run -d printed %q, not a 64-hex ID", id)
	}
	return id
}

type inspectState struct {
	ID    string `json:"Id"`
	Name  string
	State struct {
		Status     string
		Running    bool
		Pid        int
		ExitCode   int
		Error      string
		StartedAt  time.Time
		FinishedAt time.Time
	}
	RestartCount    int
	NetworkSettings struct{ IPAddress string }
}

func (l *lifecycle) inspect(ref string) inspectState {
	l.t.Helper()
	var out []inspectState
	if err := json.Unmarshal([]byte(l.ok("inspect", ref)), &out); err != nil || len(out) != 1 {
		l.t.Fatalf("inspect %s: %v, %d objects", ref, err, len(out))
	}
	return out[0]
}

// eventually waits up to d for cond, failing with what.
func (l *lifecycle) eventually(d time.Duration, what string, cond func() bool) {
	l.t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			l.t.Fatalf("after %v: %s", d, what)
		}
	}
}

// assertNothingLeft checks that no process of this runtime directory lives and that no
// state directory or temporary file is left in it.
func (l *lifecycle) assertNothingLeft() {
	l.t.Helper()
	if pids := processesOf(l.rt); len(pids) > 0 {
		l.t.Errorf("processes left running: %v", pids)
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
	}
	ents, _ := os.ReadDir(l.rt)
	for _, e := range ents {
		if e.Name() != "names" && e.Name() != "names.lock" {
			l.t.Errorf("left in the runtime directory: %s", e.Name())
		}
	}
	if names, _ := os.ReadDir(filepath.Join(l.rt, "names")); len(names) > 0 {
		l.t.Errorf("names left: %d", len(names))
	}
}

// processesOf lists the live (not zombie) processes whose environment names rt as their
// runtime directory: the monitors started with it.
func processesOf(rt string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if !strings.Contains(string(env), "PITH_RUNTIME="+rt+"\x00") {
			continue
		}
		if stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); strings.Contains(string(stat), ") Z ") {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// The everyday cycle, checked against what Docker does at each step.
func TestLifecycleRunPsLogsStopWaitRm(t *testing.T) {
	l := newLifecycle(t)
	ticker := testenv.Program(t, "ticker")
	id := l.runD("--name", "tick", "-p", "80", ticker, "-every", "200ms", "-code", "7")
	l.eventually(60*time.Second, "no tick in the log", func() bool { return strings.Contains(l.ok("logs", "tick"), "tick 1\n") })

	ps := l.ok("ps")
	if !regexp.MustCompile(`0\.0\.0\.0:[1-9]\d*->80/tcp`).MatchString(ps) {
		t.Errorf("ps does not show the port the host picked:\n%s", ps)
	}
	if !strings.HasPrefix(ps, "ID ") || !strings.Contains(ps, id[:12]) || !regexp.MustCompile(`Up (Less than a second|\d+ seconds?)`).MatchString(ps) || !strings.Contains(ps, "tick\n") {
		t.Errorf("ps:\n%s", ps)
	}
	if q := l.ok("ps", "-q"); q != id[:12]+"\n" {
		t.Errorf("ps -q = %q, want %q", q, id[:12])
	}
	var row map[string]string
	if err := json.Unmarshal([]byte(l.ok("ps", "--format", "json")), &row); err != nil || row["Names"] != "tick" || row["State"] != "running" {
		t.Errorf("ps --format json: %v %v", row, err)
	}
	if got := l.ok("ps", "--format", "{{.Names}} {{.State}}"); got != "tick running\n" {
		t.Errorf("ps --format TEMPLATE = %q", got)
	}
	in := l.inspect(id[:5]) // a prefix, as Docker takes
	if in.ID != id || in.Name != "/tick" || !in.State.Running || in.State.Pid == 0 || in.NetworkSettings.IPAddress != "10.0.2.15" {
		t.Errorf("inspect while running: %+v", in)
	}
	st := l.ok("stats", "--no-stream", "tick")
	if m := regexp.MustCompile(`tick\s+\d+\.\d+%\s+(\d+\.\d)MiB\s+(\d+\.\d)MiB / 2048MiB\s+\d\S*B / \d\S*B\s+\d+`).FindStringSubmatch(st); m == nil || m[1] == "0.0" || m[2] == "0.0" {
		t.Errorf("stats --no-stream (want host RSS and guest memory above 0):\n%s", st)
	}

	logs := l.pith("logs", "tick")
	if !strings.HasPrefix(logs.Stdout, "start\ntick 0\ntick 1\n") || logs.Stderr != "ticker on stderr\n" {
		t.Errorf("logs: stdout %q, stderr %q", logs.Stdout, logs.Stderr)
	}
	if tail := l.ok("logs", "--tail", "1", "tick"); strings.Count(tail, "\n") != 1 || !strings.HasPrefix(tail, "tick ") {
		t.Errorf("logs --tail 1 = %q", tail)
	}
	if ts := l.ok("logs", "-t", "tick"); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z? ?[-+:\d]* start\n`).MatchString(ts) {
		t.Errorf("logs -t = %q", ts)
	}
	if s := l.ok("logs", "--since", "1h", "tick"); !strings.HasPrefix(s, "start\n") {
		t.Errorf("logs --since 1h = %q", s)
	}
	if s := l.ok("logs", "--since", time.Now().Add(time.Hour).Format(time.RFC3339), "tick"); s != "" {
		t.Errorf("logs --since an hour ahead = %q", s)
	}

	start := time.Now()
	if out := l.ok("stop", "tick"); out != "tick\n" {
		t.Errorf("stop printed %q", out)
	}
	if d := time.Since(start); d > 9*time.Second {
		t.Errorf("stop took %v: the app's SIGTERM handler should have ended it", d)
	}
	if ps := l.ok("ps", "-q"); ps != "" {
		t.Errorf("ps after stop: %q", ps)
	}
	if ps := l.ok("ps", "-a"); !regexp.MustCompile(`Exited \(7\) .* ago`).MatchString(ps) {
		t.Errorf("ps -a after stop:\n%s", ps)
	}
	if w := l.ok("wait", "tick"); w != "7\n" {
		t.Errorf("wait = %q, want 7", w)
	}
	in = l.inspect("tick")
	if in.State.Running || in.State.Status != "exited" || in.State.ExitCode != 7 || in.State.Pid != 0 || !in.State.FinishedAt.After(in.State.StartedAt) {
		t.Errorf("inspect after stop: %+v", in.State)
	}
	if !strings.HasSuffix(l.ok("logs", "tick"), "terminated\n") {
		t.Errorf("the app did not see SIGTERM")
	}
	if r := l.pith("stop", "tick"); r.Code != 0 { // as Docker: not an error
		t.Errorf("stop of a stopped one: exit %d, %s", r.Code, r.Stderr)
	}
	if r := l.pith("kill", "tick"); r.Code == 0 || !strings.Contains(r.Stderr, "not running") {
		t.Errorf("kill of a stopped one: exit %d, %q", r.Code, r.Stderr)
	}

	// start runs it again with its configuration; rm of a running one needs -f.
	l.ok("start", "tick")
	l.eventually(60*time.Second, "not running after start", func() bool { return l.inspect("tick").State.Running })
	if r := l.pith("rm", "tick"); r.Code == 0 || !strings.Contains(r.Stderr, "rm -f") {
		t.Errorf("rm of a running one: exit %d, %q", r.Code, r.Stderr)
	}
	l.ok("restart", "-t", "5", "tick")
	if in := l.inspect("tick"); !in.State.Running {
		t.Errorf("not running after restart: %+v", in.State)
	}
	if out := l.ok("rm", "-f", "tick"); out != "tick\n" {
		t.Errorf("rm -f printed %q", out)
	}
	if r := l.pith("inspect", "tick"); r.Code == 0 || !strings.Contains(r.Stderr, "no such unikernel") {
		t.Errorf("inspect after rm: exit %d, %q", r.Code, r.Stderr)
	}
}

func TestLifecycleLogsFollowEndsWithTheApp(t *testing.T) {
	l := newLifecycle(t)
	ticker := testenv.Program(t, "ticker")
	l.runD("--name", "f", ticker, "-every", "300ms", "-n", "5")
	start := time.Now()
	out := l.ok("logs", "-f", "f")
	if out != "start\ntick 0\ntick 1\ntick 2\ntick 3\ntick 4\ndone\n" {
		t.Errorf("logs -f = %q", out)
	}
	if in := l.inspect("f"); in.State.Status != "exited" || in.State.ExitCode != 0 {
		t.Errorf("after logs -f returned (%v): %+v", time.Since(start), in.State)
	}
	l.ok("rm", "f")
}

func TestLifecycleAutoRemoveAndRestartOnFailure(t *testing.T) {
	l := newLifecycle(t)
	ticker := testenv.Program(t, "ticker")
	id := l.runD("--rm", "--name", "brief", ticker, "-every", "10ms", "-n", "1")
	l.eventually(60*time.Second, "--rm: the state directory is still there", func() bool {
		_, err := os.Stat(filepath.Join(l.rt, id))
		return os.IsNotExist(err)
	})
	if r := l.pith("inspect", "brief"); r.Code == 0 {
		t.Errorf("--rm: still inspectable")
	}
	// pith wait gets the exit code of one run with --rm before it is removed.
	id = l.runD("--rm", "--name", "brief", ticker, "-every", "300ms", "-n", "3", "-exit", "4")
	if w := l.ok("wait", "brief"); w != "4\n" {
		t.Errorf("wait of an --rm one = %q, want 4", w)
	}
	l.eventually(10*time.Second, "--rm after wait: the state directory is still there", func() bool {
		_, err := os.Stat(filepath.Join(l.rt, id))
		return os.IsNotExist(err)
	})

	l.runD("--restart", "on-failure:2", "--name", "flaky", ticker, "-n", "0", "-exit", "3")
	l.eventually(90*time.Second, "on-failure:2 did not end after 2 restarts", func() bool {
		in := l.inspect("flaky")
		return in.State.Status == "exited"
	})
	in := l.inspect("flaky")
	if in.RestartCount != 2 || in.State.ExitCode != 3 {
		t.Errorf("on-failure:2: %d restarts, exit %d; want 2 and 3", in.RestartCount, in.State.ExitCode)
	}
	if n := strings.Count(l.ok("logs", "flaky"), "start\n"); n != 3 {
		t.Errorf("on-failure:2 ran the app %d times, want 3", n)
	}
	l.ok("rm", "flaky")

	// A stop is a manual stop: always does not start it again.
	l.runD("--restart", "always", "--name", "steady", ticker, "-every", "100ms")
	l.ok("stop", "steady")
	time.Sleep(time.Second)
	if in := l.inspect("steady"); in.State.Status != "exited" || in.RestartCount != 0 {
		t.Errorf("restart always, after stop: %+v, %d restarts", in.State, in.RestartCount)
	}
	l.ok("rm", "steady")
}

// kill -9 of a monitor: ps tells the truth, and the next commands work.
func TestLifecycleKill9OfTheMonitor(t *testing.T) {
	l := newLifecycle(t)
	ticker := testenv.Program(t, "ticker")
	port := freePort(t)
	l.runD("--name", "victim", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), ticker)
	if ps := l.ok("ps"); !strings.Contains(ps, fmt.Sprintf("127.0.0.1:%d->80/tcp", port)) {
		t.Errorf("ps does not show the published port:\n%s", ps)
	}
	pid := l.inspect("victim").State.Pid
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Dead, not dying: a killed process's memory (and so its environment, which
	// processesOf reads) goes before its descriptors, and its first thread is a zombie
	// while the others still close theirs (the VM's takes a while): gone, or a zombie
	// with no other thread left.
	l.eventually(10*time.Second, "the monitor did not die", func() bool {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		threads, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		return err != nil || strings.Contains(string(stat), ") Z ") && len(threads) <= 1
	})
	if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		t.Errorf("the port of the killed monitor is still held: %v", err)
	} else {
		ln.Close()
	}
	if ps := l.ok("ps", "-a"); !strings.Contains(ps, "Exited (137)") {
		t.Errorf("ps -a after kill -9:\n%s", ps)
	}
	in := l.inspect("victim")
	if in.State.Running || in.State.ExitCode != 137 || in.State.Error == "" {
		t.Errorf("inspect after kill -9: %+v", in.State)
	}
	l.ok("start", "victim")
	if in := l.inspect("victim"); !in.State.Running || in.State.Pid == pid {
		t.Errorf("start after kill -9: %+v", in.State)
	}
	l.ok("rm", "-f", "victim")
}

func TestLifecycleNameInUseAndFailedStart(t *testing.T) {
	l := newLifecycle(t)
	ticker := testenv.Program(t, "ticker")
	id := l.runD("--name", "dup", ticker)
	r := l.pith("run", "-d", "--name", "dup", ticker)
	if r.Code != 125 || !strings.Contains(r.Stderr, `"dup" is in use`) || strings.Count(r.Stderr, "\n") != 1 || r.Stdout != "" {
		t.Errorf("a second dup: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if q := l.ok("ps", "-aq"); q != id[:12]+"\n" {
		t.Errorf("ps -aq = %q", q)
	}
	l.ok("rm", "-f", "dup")

	// A port in use: the monitor's one-line error, and nothing kept.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	r = l.pith("run", "-d", "--name", "busy", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), ticker)
	if r.Code != 125 || !strings.Contains(r.Stderr, strconv.Itoa(port)) || strings.Count(r.Stderr, "\n") != 1 || r.Stdout != "" {
		t.Errorf("a port in use: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if q := l.ok("ps", "-aq"); q != "" {
		t.Errorf("a failed start left %q", q)
	}
	r = l.pith("run", "-d", "/no/such/binary")
	if r.Code != 125 || !strings.Contains(r.Stderr, "no such file") {
		t.Errorf("a missing binary: exit %d, %q", r.Code, r.Stderr)
	}
}

// Start, stop and remove again and again (PITH_SOAK_CYCLES times, default 150, which fits
// about a minute in the nested guest); nothing may be left: no process, descriptor, port
// or state directory.
func TestLifecycleSoak(t *testing.T) {
	l := newLifecycle(t)
	ticker := testenv.Program(t, "ticker")
	cycles := 150
	if v := os.Getenv("PITH_SOAK_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("PITH_SOAK_CYCLES=%s: not a number", v)
		}
		cycles = n
	}
	port := freePort(t)
	fds := func() int { e, _ := os.ReadDir("/proc/self/fd"); return len(e) }
	before := fds()
	start := time.Now()
	for i := range cycles {
		name := fmt.Sprintf("soak%d", i)
		l.runD("--name", name, "-p", fmt.Sprintf("127.0.0.1:%d:80", port), ticker, "-every", "50ms")
		l.ok("stop", "-t", "5", name)
		l.ok("rm", name)
	}
	t.Logf("%d cycles of run -d, stop, rm in %v (%v each)", cycles, time.Since(start).Round(time.Millisecond), (time.Since(start) / time.Duration(cycles)).Round(time.Millisecond))
	l.assertNothingLeft()
	if after := fds(); after > before {
		t.Errorf("the test process holds %d descriptors, %d before", after, before)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Errorf("the published port is still held: %v", err)
	} else {
		ln.Close()
	}
}

// kill -9 of the CLI at points in the middle of a start: whatever it left, ps tells the
// truth about it, rm clears it, and the name can be used again.
func TestLifecycleKill9OfTheCLIDuringAStart(t *testing.T) {
	l := newLifecycle(t)
	ticker := testenv.Program(t, "ticker")
	pith, kernel := testenv.Build(t)
	for _, after := range []time.Duration{0, 2 * time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond, 300 * time.Millisecond} {
		cmd := exec.Command(pith, "run", "-d", "--name", "half", ticker)
		cmd.Env = append(os.Environ(), "PITH_KERNEL="+kernel, "PITH_RUNTIME="+l.rt)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(after)
		cmd.Process.Kill()
		cmd.Wait()
		// What is left must be what ps says: a running one has a monitor, and a monitor
		// belongs to a running one.
		// A monitor started just now says so once it has started the guest.
		var rows []map[string]string
		var procs []int
		l.eventually(10*time.Second, fmt.Sprintf("killed after %v: ps -a does not match the monitor processes", after), func() bool {
			rows = nil
			for _, line := range strings.Split(strings.TrimSpace(l.ok("ps", "-a", "--format", "json")), "\n") {
				var row map[string]string
				if line != "" && json.Unmarshal([]byte(line), &row) == nil {
					rows = append(rows, row)
				}
			}
			procs = processesOf(l.rt)
			running := 0
			for _, r := range rows {
				if r["State"] == "running" {
					running++
				}
			}
			// A temporary directory its CLI left without a lock file goes at a listing
			// 2 s later (instance.Store.ids).
			ents, _ := os.ReadDir(l.rt)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".tmp-") {
					return false
				}
			}
			return len(rows) <= 1 && running == len(procs)
		})
		t.Logf("killed after %v: %d left (%v), %d monitors", after, len(rows), rows, len(procs))
		if len(rows) == 1 {
			l.ok("rm", "-f", "half")
		}
		l.assertNothingLeft()
		// And the next command works: the name is free.
		l.runD("--name", "half", ticker)
		l.ok("rm", "-f", "half")
	}
}

// Many at once (PITH_DENSITY, default 10): each is listed, and each stops; the figures
// (start time, host memory and idle CPU per unikernel, ps time) are logged.
func TestLifecycleManyAtOnce(t *testing.T) {
	l := newLifecycle(t)
	ticker := testenv.Program(t, "ticker")
	n := 10
	if v := os.Getenv("PITH_DENSITY"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatalf("PITH_DENSITY=%s: not a number", v)
		}
	}
	start := time.Now()
	ids := map[string]bool{}
	for i := range n {
		ids[l.runD("--name", fmt.Sprintf("many%d", i), "-m", "256m", ticker, "-every", "1h")[:12]] = true
	}
	started := time.Since(start)
	time.Sleep(time.Second) // past the guests' start
	psStart := time.Now()
	q := strings.Fields(l.ok("ps", "-q"))
	psTime := time.Since(psStart)
	if len(q) != n {
		t.Fatalf("ps -q lists %d of %d", len(q), n)
	}
	for _, id := range q {
		if !ids[id] {
			t.Errorf("ps -q lists %s, which was not started", id)
		}
	}
	procs := processesOf(l.rt)
	if len(procs) != n {
		t.Fatalf("%d monitor processes for %d unikernels", len(procs), n)
	}
	ticks := func() (total uint64) {
		for _, p := range procs {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
			f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
			u, _ := strconv.ParseUint(f[11], 10, 64)
			s, _ := strconv.ParseUint(f[12], 10, 64)
			total += u + s
		}
		return total
	}
	// Resident memory, and of it the proportional share (file pages such as the kernel
	// image and pith's own code are shared by every monitor) and the anonymous part.
	var rss, pss, anon uint64
	for _, p := range procs {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p))
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			k, _ := strconv.ParseUint(f[1], 10, 64)
			switch f[0] {
			case "Rss:":
				rss += k
			case "Pss:":
				pss += k
			case "Anonymous:":
				anon += k
			}
		}
	}
	if rss == 0 {
		t.Errorf("no resident memory read from /proc/PID/smaps_rollup")
	}
	t0 := ticks()
	time.Sleep(5 * time.Second)
	idle := ticks() - t0
	stopStart := time.Now()
	l.ok(append([]string{"stop"}, q...)...)
	stopped := time.Since(stopStart)
	if left := l.ok("ps", "-q"); left != "" {
		t.Errorf("running after stop: %q", left)
	}
	l.ok(append([]string{"rm"}, q...)...)
	t.Logf("%d unikernels: started in %v (%v each), host memory per monitor: RSS %.1f MiB, PSS %.1f MiB, anonymous %.1f MiB; idle CPU of all %d ticks (10 ms) in 5 s, ps %v, stop of all %v",
		n, started.Round(time.Millisecond), (started / time.Duration(n)).Round(time.Millisecond), float64(rss)/1024/float64(n), float64(pss)/1024/float64(n), float64(anon)/1024/float64(n), idle, psTime.Round(time.Millisecond), stopped.Round(time.Millisecond))
}

// The time from pith run -d to the first answered request of a net/http server, and the
// network I/O stats reports for it.
func TestLifecycleFirstRequestAfterRunD(t *testing.T) {
	l := newLifecycle(t)
	server := testenv.Program(t, "httphello")
	port := freePort(t)
	start := time.Now()
	l.runD("--name", "web", "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), server)
	returned := time.Since(start)
	client := &http.Client{Timeout: 2 * time.Second}
	var body []byte
	l.eventually(60*time.Second, "the server never answered", func() bool {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == 200
	})
	answered := time.Since(start)
	if string(body) != "hello\n" {
		t.Errorf("answered %q", body)
	}
	for range 20 {
		if resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/bytes/10000", port)); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	st := l.ok("stats", "--no-stream", "web")
	m := regexp.MustCompile(`(\d[\d.]*)(k|M)?B / (\d[\d.]*)(k|M)?B`).FindStringSubmatch(st)
	if m == nil || m[4] == "" { // the guest sent 200 kB: kB or MB
		t.Errorf("stats NET I/O (want over 200 kB sent):\n%s", st)
	}
	t.Logf("run -d returned after %v; first request answered %v after run -d began", returned.Round(time.Millisecond), answered.Round(time.Millisecond))
	l.ok("rm", "-f", "web")
}

// pith run's flags work with -d as without: -e, --env-file, -v, -w, --cpus, -m.
func TestLifecycleRunFlagsWorkDetached(t *testing.T) {
	l := newLifecycle(t)
	ticker := testenv.Program(t, "ticker")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "env"), []byte("FROM_FILE=yes\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "data"), []byte("shared"), 0o644)
	l.runD("--name", "flags", "-e", "FROM_FLAG=a b", "--env-file", filepath.Join(dir, "env"), "-v", dir+":/mnt/in:ro",
		"-w", "/mnt/in", "--cpus", "2", "-m", "512m", ticker, "-n", "0", "-show-env", "FROM_FLAG,FROM_FILE", "-show-file", "data", "-show")
	if code := l.ok("wait", "flags"); code != "0\n" {
		t.Errorf("wait = %q", code)
	}
	want := "start\nFROM_FLAG=a b\nFROM_FILE=yes\nfile \"shared\" <nil>\ncwd /mnt/in cpus 2\ndone\n"
	if got := l.ok("logs", "flags"); got != want {
		t.Errorf("logs = %q, want %q", got, want)
	}
	l.ok("rm", "flags")
}

// --restart always starts an app that exits 0 again, with backoff; kill -s TERM reaches
// the app, and is a manual stop: no restart after it.
func TestLifecycleRestartAlwaysAndKillSignal(t *testing.T) {
	l := newLifecycle(t)
	ticker := testenv.Program(t, "ticker")
	l.runD("--restart", "always", "--name", "loop", ticker, "-n", "0")
	l.eventually(60*time.Second, "always: fewer than 3 restarts", func() bool { return l.inspect("loop").RestartCount >= 3 })
	if n := strings.Count(l.ok("logs", "loop"), "done\n"); n < 3 {
		t.Errorf("always: the app ran to its end %d times", n)
	}
	l.ok("stop", "loop")
	n := l.inspect("loop").RestartCount
	time.Sleep(time.Second)
	if in := l.inspect("loop"); in.State.Status != "exited" || in.RestartCount != n {
		t.Errorf("always, after stop: %+v, %d restarts (%d at the stop)", in.State, in.RestartCount, n)
	}
	l.ok("rm", "loop")

	l.runD("--restart", "always", "--name", "sig", ticker, "-every", "100ms", "-code", "5")
	l.eventually(60*time.Second, "no tick", func() bool { return strings.Contains(l.ok("logs", "sig"), "tick 0\n") })
	if out := l.ok("kill", "-s", "TERM", "sig"); out != "sig\n" {
		t.Errorf("kill printed %q", out)
	}
	if w := l.ok("wait", "sig"); w != "5\n" {
		t.Errorf("wait after kill -s TERM = %q, want the app's 5", w)
	}
	if in := l.inspect("sig"); in.RestartCount != 0 || !strings.HasSuffix(l.ok("logs", "sig"), "terminated\n") {
		t.Errorf("after kill -s TERM: %d restarts, state %+v", in.RestartCount, in.State)
	}
	l.ok("rm", "sig")
}
