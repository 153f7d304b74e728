package instance

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a helper process: a fake monitor, or a CLI creating a
// unikernel, as INSTANCE_HELPER says.
func TestMain(m *testing.M) {
	switch os.Getenv("INSTANCE_HELPER") {
	case "monitor":
		fakeMonitor()
	case "create":
		s, _ := Open(os.Getenv("INSTANCE_ROOT"))
		<-time.After(time.Until(parseTime(os.Getenv("INSTANCE_AT"))))
		inst, lk, err := s.Create(Config{Name: "raced"})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		lk.Release()
		fmt.Println("created", inst.ID)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// fakeMonitor behaves as a detached unikernel's monitor does: it takes the lock handed
// to it as descriptor 3, says it runs, and waits to be killed.
func fakeMonitor() {
	s, _ := Open(os.Getenv("INSTANCE_ROOT"))
	inst, err := s.Get(os.Getenv("INSTANCE_ID"))
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	AdoptLock(3, "lock")
	inst.SetState(State{Status: StatusRunning, Pid: os.Getpid(), StartedAt: time.Now()})
	fmt.Println("running")
	time.Sleep(time.Minute)
	os.Exit(0)
}

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func create(t *testing.T, s *Store, cfg Config) *Instance {
	t.Helper()
	inst, lk, err := s.Create(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lk.Release()
	return inst
}

// startFake starts a fake monitor for inst, handing it inst's lock, and waits until it
// says it runs.
func startFake(t *testing.T, s *Store, inst *Instance) *exec.Cmd {
	t.Helper()
	lk, err := inst.TryLock()
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Release()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "INSTANCE_HELPER=monitor", "INSTANCE_ROOT="+s.Root, "INSTANCE_ID="+inst.ID)
	cmd.ExtraFiles = []*os.File{lk.File()}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 8)
	if n, _ := out.Read(buf); string(buf[:n]) != "running\n" {
		t.Fatalf("fake monitor said %q", buf[:n])
	}
	return cmd
}

func TestCreateGivesIDNameAndCreatedState(t *testing.T) {
	s := newStore(t)
	inst := create(t, s, Config{App: "/bin/app"})
	if len(inst.ID) != 64 || !isHex(inst.ID) {
		t.Errorf("ID %q is not 64 hex digits", inst.ID)
	}
	adj, noun, ok := strings.Cut(inst.Config.Name, "_")
	if !ok || adj == "" || noun == "" {
		t.Errorf("random name %q is not adjective_noun", inst.Config.Name)
	}
	got, err := s.Get(inst.Config.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != inst.ID || got.State.Status != StatusCreated || got.Config.App != "/bin/app" || got.Live() {
		t.Errorf("got %+v, want the created one, not live", got)
	}
	if ents, _ := os.ReadDir(s.Root); len(ents) != 3 { // names/, names.lock, the ID
		t.Errorf("runtime directory holds %d entries, want 3", len(ents))
	}
}

func TestGetResolvesIDPrefixesAndNamesAsDocker(t *testing.T) {
	s := newStore(t)
	// Of 17 IDs, two share their first hex digit: a prefix that is not unique.
	byFirst := map[byte]*Instance{}
	var a, b *Instance
	for i := 0; a == nil; i++ {
		inst := create(t, s, Config{Name: fmt.Sprintf("u%d", i)})
		if other := byFirst[inst.ID[0]]; other != nil {
			a, b = other, inst
		}
		byFirst[inst.ID[0]] = inst
	}
	os.Remove(filepath.Join(s.Root, "names", "alpha"))
	os.Symlink(a.ID, filepath.Join(s.Root, "names", "alpha"))
	os.Symlink(b.ID, filepath.Join(s.Root, "names", "beta"))
	common := 0
	for a.ID[common] == b.ID[common] {
		common++
	}
	for _, tc := range []struct {
		ref  string
		want string // ID, or "" for an error
		err  string
	}{
		{a.ID, a.ID, ""},
		{a.ID[:common+1], a.ID, ""},
		{b.ID[:common+1], b.ID, ""},
		{"alpha", a.ID, ""},
		{"beta", b.ID, ""},
		{a.ID[:common], "", "start with"},
		{"gamma", "", "no such unikernel"},
		{"", "", "no such unikernel"},
		{"../alpha", "", "no such unikernel"},
	} {
		got, err := s.Get(tc.ref)
		switch {
		case tc.want != "" && (err != nil || got.ID != tc.want):
			t.Errorf("Get(%q) = %v, %v; want %s", tc.ref, got, err, tc.want[:12])
		case tc.want == "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("Get(%q) error %v; want one saying %q", tc.ref, err, tc.err)
		}
	}
	if _, err := s.Get("gamma"); !errors.Is(err, ErrNotFound) {
		t.Errorf("not found is not ErrNotFound: %v", err)
	}
}

func TestNameRaceBetweenGoroutinesHasOneWinner(t *testing.T) {
	s := newStore(t)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			inst, lk, err := s.Create(Config{Name: "web"})
			if err == nil {
				lk.Release()
				_ = inst
			}
			errs[i] = err
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else if !strings.Contains(err.Error(), `the name "web" is in use`) {
			t.Errorf("loser's error: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d creators won the name, want 1", won)
	}
	list, _ := s.List()
	if len(list) != 1 {
		t.Errorf("%d unikernels exist, want 1", len(list))
	}
	assertNoTemporaries(t, s)
}

func TestNameRaceBetweenProcessesHasOneWinner(t *testing.T) {
	s := newStore(t)
	at := time.Now().Add(300 * time.Millisecond).Format(time.RFC3339Nano)
	const n = 6
	outs := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "INSTANCE_HELPER=create", "INSTANCE_ROOT="+s.Root, "INSTANCE_AT="+at)
			outs[i], _ = cmd.CombinedOutput()
		})
	}
	wg.Wait()
	won := 0
	for _, out := range outs {
		switch {
		case strings.HasPrefix(string(out), "created "):
			won++
		case !strings.Contains(string(out), `the name "raced" is in use`):
			t.Errorf("a loser said %q", out)
		}
	}
	if won != 1 {
		t.Fatalf("%d processes won the name, want 1: %q", won, outs)
	}
	assertNoTemporaries(t, s)
}

func TestNameIsFreeOnceRemovedAndBadNamesAreRefused(t *testing.T) {
	s := newStore(t)
	a := create(t, s, Config{Name: "x"})
	if _, _, err := s.Create(Config{Name: "x"}); err == nil {
		t.Fatal("a second x was created while the first exists")
	}
	if err := s.Remove(a); err != nil {
		t.Fatal(err)
	}
	b := create(t, s, Config{Name: "x"})
	if got, err := s.Get("x"); err != nil || got.ID != b.ID {
		t.Errorf("x is %v, %v; want the new one", got, err)
	}
	// A removal killed between the directory and the name leaves a link to nothing: free.
	os.RemoveAll(b.Dir)
	create(t, s, Config{Name: "x"})
	for _, bad := range []string{"a/b", "-x", "_x", "x y", ".."} {
		if _, _, err := s.Create(Config{Name: bad}); err == nil {
			t.Errorf("name %q was taken", bad)
		}
	}
	assertNoTemporaries(t, s)
}

// A reader sees the old state or the new one, never a mix or an empty file.
func TestStateWritesAreAtomic(t *testing.T) {
	s := newStore(t)
	inst := create(t, s, Config{Name: "a"})
	lk, err := inst.TryLock()
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Release()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// Sizes vary, so a torn write would show.
			inst.SetState(State{Status: StatusExited, ExitCode: i, Error: strings.Repeat("e", i%500)})
		}
	})
	reads := 0
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); reads++ {
		b, err := os.ReadFile(filepath.Join(inst.Dir, "state.json"))
		if err != nil {
			t.Fatal(err)
		}
		var st State
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("read a torn state after %d reads: %v: %q", reads, err, b)
		}
		if len(st.Error) != st.ExitCode%500 && st.Status != StatusCreated {
			t.Fatalf("state mixes two writes: code %d, error of %d bytes", st.ExitCode, len(st.Error))
		}
	}
	close(stop)
	wg.Wait()
}

// After kill -9 of its monitor, a unikernel that said it ran is read as exited with
// DiedUnrecorded, and the correction is written down.
func TestKilledMonitorIsReportedExited(t *testing.T) {
	s := newStore(t)
	inst := create(t, s, Config{Name: "victim"})
	cmd := startFake(t, s, inst)
	got, err := s.Get("victim")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Live() || got.State.Status != StatusRunning || got.State.Pid != cmd.Process.Pid {
		t.Fatalf("while the monitor lives: live %v, state %+v", got.Live(), got.State)
	}
	if _, err := inst.TryLock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("the lock of a live monitor was taken: %v", err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	got, err = s.Get("victim")
	if err != nil {
		t.Fatal(err)
	}
	if got.Live() || got.State.Status != StatusExited || got.State.ExitCode != DiedUnrecorded || got.State.Pid != 0 || got.State.Error == "" {
		t.Fatalf("after kill -9: live %v, state %+v", got.Live(), got.State)
	}
	var onDisk State
	readJSON(filepath.Join(inst.Dir, "state.json"), &onDisk)
	if onDisk.Status != StatusExited || onDisk.ExitCode != DiedUnrecorded {
		t.Errorf("the correction was not written: %+v", onDisk)
	}
	// And it can be started again: its lock is free.
	lk, err := got.TryLock()
	if err != nil {
		t.Fatal(err)
	}
	lk.Release()
}

func TestKilledMonitorOfAutoRemoveIsRemoved(t *testing.T) {
	s := newStore(t)
	inst := create(t, s, Config{Name: "gone", AutoRemove: true})
	cmd := startFake(t, s, inst)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if _, err := s.Get("gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an --rm unikernel whose monitor was killed: %v, want not found", err)
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Errorf("%d left", len(list))
	}
	create(t, s, Config{Name: "gone"}) // the name is free
}

// A CLI killed half-way through Create leaves a temporary directory, which the next
// List removes; one whose creator lives is left alone.
func TestHalfMadeDirectoriesAreCleanedUp(t *testing.T) {
	s := newStore(t)
	dead := filepath.Join(s.Root, ".tmp-"+NewID())
	os.Mkdir(dead, 0o700)
	os.WriteFile(filepath.Join(dead, "lock"), nil, 0o600)
	live := filepath.Join(s.Root, ".tmp-"+NewID())
	os.Mkdir(live, 0o700)
	lk, err := lockFile(filepath.Join(live, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	s.List()
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the dead creator's directory is still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the live creator's directory was removed: %v", err)
	}
	lk.Release()
	s.List()
	assertNoTemporaries(t, s)
}

func assertNoTemporaries(t *testing.T, s *Store) {
	t.Helper()
	s.List()
	ents, _ := os.ReadDir(s.Root)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("left over: %s", e.Name())
		}
	}
}

// A waiter's hold keeps a --rm unikernel's final state until it lets go, and no longer.
func TestWaitersHoldTheFinalState(t *testing.T) {
	s := newStore(t)
	inst := create(t, s, Config{Name: "w", AutoRemove: true})
	hold, err := inst.HoldWait()
	if err != nil {
		t.Fatal(err)
	}
	second, err := inst.HoldWait() // waiters do not exclude each other
	if err != nil {
		t.Fatal(err)
	}
	second.Release()
	done := make(chan time.Time)
	go func() { inst.AwaitWaiters(5 * time.Second); done <- time.Now() }()
	time.Sleep(200 * time.Millisecond)
	released := time.Now()
	hold.Release()
	if at := <-done; at.Before(released) || at.Sub(released) > time.Second {
		t.Errorf("AwaitWaiters returned %v after the release (negative: before it)", at.Sub(released))
	}
	start := time.Now()
	inst.AwaitWaiters(5 * time.Second) // none: at once
	if d := time.Since(start); d > time.Second {
		t.Errorf("with no waiter, AwaitWaiters took %v", d)
	}
}

// A CLI killed between making its temporary directory and its lock file leaves a
// directory no lock names: a listing 2 s later removes it, an earlier one leaves it (its
// CLI may be about to lock it).
func TestListRemovesATemporaryDirectoryWithNoLock(t *testing.T) {
	s := newStore(t)
	old := filepath.Join(s.Root, ".tmp-"+NewID())
	fresh := filepath.Join(s.Root, ".tmp-"+NewID())
	for _, d := range []string{old, fresh} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-3 * time.Second)
	os.Chtimes(old, past, past)
	if _, err := s.List(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an abandoned temporary directory is still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a temporary directory made just now was removed: %v", err)
	}
}
