// Package testenv builds pith and its guest kernel for end-to-end tests and runs them.
package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

var (
	once     sync.Once
	dir      string
	keep     bool // dir is PITH_TEST_BIN's: not ours to remove
	buildErr error
)

// Root is the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Build builds bin/pith and bin/pith-kernel into a temporary directory, once per test binary.
// With PITH_TEST_BIN set it uses the binaries in that directory instead (for machines
// without a Go toolchain).
func Build(t testing.TB) (pith, kernel string) {
	t.Helper()
	if d := os.Getenv("PITH_TEST_BIN"); d != "" {
		dir, keep = d, true
		return filepath.Join(d, "pith"), filepath.Join(d, "pith-kernel")
	}
	once.Do(func() {
		dir, buildErr = os.MkdirTemp("", "pith-test-")
		if buildErr != nil {
			return
		}
		buildErr = run(exec.Command("make", "-s", "-C", Root(), "all", "BIN="+dir))
	})
	if buildErr != nil {
		t.Fatalf("building pith: %v", buildErr)
	}
	return filepath.Join(dir, "pith"), filepath.Join(dir, "pith-kernel")
}

// programs are the executables the end-to-end tests run, by name: a command that builds
// OUT from the repository root, and its environment.
var programs = map[string]struct {
	env  []string
	args []string
}{
	"probe":       {[]string{"CGO_ENABLED=0"}, []string{"go", "build", "-o", "OUT", "./test/apps/probe"}},
	"probe-arm64": {[]string{"CGO_ENABLED=0", "GOARCH=arm64"}, []string{"go", "build", "-o", "OUT", "./test/apps/probe"}},
	// Go links a static PIE only through the C toolchain.
	"probe-pie": {[]string{"CGO_ENABLED=1"}, []string{"go", "build", "-buildmode=pie",
		"-ldflags=-linkmode=external -extldflags=-static-pie", "-o", "OUT", "./test/apps/probe"}},
	"httphello":         {[]string{"CGO_ENABLED=0"}, []string{"go", "build", "-o", "OUT", "./bench/apps/httphello"}},
	"ticker":            {[]string{"CGO_ENABLED=0"}, []string{"go", "build", "-o", "OUT", "./test/apps/ticker"}},
	"chello-static":     {nil, []string{"gcc", "-O2", "-static", "-o", "OUT", "test/apps/chello/hello.c"}},
	"chello-static-pie": {nil, []string{"gcc", "-O2", "-static-pie", "-o", "OUT", "test/apps/chello/hello.c"}},
	"csys":              {nil, []string{"gcc", "-O2", "-static", "-o", "OUT", "test/apps/csys/csys.c"}},
	"cserve":            {nil, []string{"gcc", "-O2", "-static", "-o", "OUT", "test/apps/cserve/cserve.c"}},
	"cdynamic":          {nil, []string{"gcc", "-O2", "-o", "OUT", "test/apps/cdynamic/cdynamic.c"}},
	"cmusl":             {nil, []string{"musl-gcc", "-O2", "-o", "OUT", "test/apps/cdynamic/cdynamic.c"}},
	// musl's dynamic linker (Debian's musl package; on Alpine, /lib/ld-musl-x86_64.so.1).
	"ld-musl": {nil, []string{"cp", "/usr/lib/x86_64-linux-musl/libc.so", "OUT"}},
	// An image archive: the probe as a FROM-scratch image pushed by skopeo, pulled by pith.
	"skopeo-image.tar": {nil, []string{"go", "run", "./test/testenv/skopeoimage", "OUT"}},
}

// Program returns the test program name (see programs), built once per test binary. With
// PITH_TEST_BIN set it takes the one built there by BuildAll, for a machine without Go
// or gcc (the nested guest of tools/nested-kvm.sh).
func Program(t testing.TB, name string) string {
	t.Helper()
	Build(t)
	appsMu.Lock()
	defer appsMu.Unlock()
	if p, ok := apps[name]; ok {
		return p
	}
	out := filepath.Join(dir, name)
	if _, err := os.Stat(out); err == nil && keep {
		apps[name] = out
		return out
	}
	if err := buildProgram(name, out); err != nil {
		t.Fatalf("building test program %s: %v", name, err)
	}
	apps[name] = out
	return out
}

func buildProgram(name, out string) error {
	p, ok := programs[name]
	if !ok {
		return fmt.Errorf("no test program is called %q", name)
	}
	if _, err := exec.LookPath(p.args[0]); err != nil {
		return fmt.Errorf("%s is needed to build it (tools/test.sh installs what the tests need): %v", p.args[0], err)
	}
	args := slices.Clone(p.args)
	args[slices.Index(args, "OUT")] = out
	c := exec.Command(args[0], args[1:]...)
	c.Dir = Root()
	c.Env = append(os.Environ(), p.env...)
	return run(c)
}

// BuildAll builds pith, its kernel and every test program into dir, for PITH_TEST_BIN.
func BuildAll(dir string) error {
	if err := run(exec.Command("make", "-s", "-C", Root(), "all", "BIN="+dir)); err != nil {
		return err
	}
	for name := range programs {
		if err := buildProgram(name, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

var (
	appsMu sync.Mutex
	apps   = map[string]string{}
)

// Cleanup removes what Build and DebianRoot made; call it from TestMain after the tests ran.
func Cleanup() {
	if dir != "" && !keep {
		os.RemoveAll(dir)
	}
	if debianTemp != "" {
		os.RemoveAll(debianTemp)
	}
}

func run(c *exec.Cmd) error {
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Run(); err != nil {
		return fmt.Errorf("%v: %v\n%s", c.Args, err, out.String())
	}
	return nil
}

// RequireKVM fails the test unless /dev/kvm can be opened: the end-to-end tests are the
// point of the suite, so a machine without KVM is a loud failure, not a silent pass,
// unless PITH_SKIP_KVM=1 says so explicitly.
func RequireKVM(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err == nil {
		f.Close()
		return
	}
	if os.Getenv("PITH_SKIP_KVM") == "1" {
		t.Skipf("SKIPPING: /dev/kvm unusable (%v) and PITH_SKIP_KVM=1", err)
	}
	t.Fatalf("/dev/kvm unusable: %v (set PITH_SKIP_KVM=1 to skip the end-to-end tests on a machine without KVM)", err)
}

// HangLimit bounds one pith command in a test: its guest's own deadline (PITH_DEADLINE)
// plus room to report it.
const HangLimit = 150 * time.Second

// Result is a finished pith command.
type Result struct {
	Stdout, Stderr string
	Code           int
	Wall           time.Duration
}

// Pith runs the pith binary with args and extra environment, bounded by a deadline.
func Pith(t testing.TB, env []string, args ...string) Result {
	t.Helper()
	return PithIn(t, "", env, args...)
}

// PithIn is Pith in working directory dir.
func PithIn(t testing.TB, dir string, env []string, args ...string) Result {
	t.Helper()
	pith, kernel := Build(t)
	// pith stops its guest after PITH_DEADLINE; a pith that hangs all the same, or a
	// process it started that keeps its output open, fails the test after HangLimit with
	// what it printed, instead of holding up the whole suite.
	ctx, cancel := context.WithTimeout(context.Background(), HangLimit)
	defer cancel()
	c := exec.CommandContext(ctx, pith, args...)
	c.WaitDelay = 10 * time.Second
	c.Dir = dir
	c.Env = append(os.Environ(), "PITH_KERNEL="+kernel, "PITH_DEADLINE=120s")
	c.Env = append(c.Env, env...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	start := time.Now()
	err := c.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String(), Wall: time.Since(start)}
	if ctx.Err() != nil || errors.Is(err, exec.ErrWaitDelay) {
		t.Fatalf("pith %v still running or holding its output after %v: %v\nstdout: %s\nstderr: %s", args, r.Wall.Round(time.Second), err, r.Stdout, r.Stderr)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running pith: %v", err)
	}
	return r
}
