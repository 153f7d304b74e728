// Package testenv builds pith and its guest kernel for end-to-end tests and runs them.
package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

// BuildApp builds the Go program in the repository directory pkg (for example
// "test/apps/probe") as a static executable, once per test binary.
func BuildApp(t testing.TB, pkg string) string {
	t.Helper()
	Build(t)
	appsMu.Lock()
	defer appsMu.Unlock()
	if p, ok := apps[pkg]; ok {
		return p
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	if _, err := os.Stat(out); err == nil && keep {
		apps[pkg] = out // prebuilt beside PITH_TEST_BIN's binaries
		return out
	}
	c := exec.Command("go", "build", "-o", out, "./"+pkg)
	c.Dir = Root()
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	if err := run(c); err != nil {
		t.Fatalf("building %s: %v", pkg, err)
	}
	apps[pkg] = out
	return out
}

var (
	appsMu sync.Mutex
	apps   = map[string]string{}
)

// Cleanup removes what Build built; call it from TestMain after the tests ran.
func Cleanup() {
	if dir != "" && !keep {
		os.RemoveAll(dir)
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
	c := exec.Command(pith, args...)
	c.Dir = dir
	c.Env = append(os.Environ(), "PITH_KERNEL="+kernel, "PITH_DEADLINE=120s")
	c.Env = append(c.Env, env...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	start := time.Now()
	err := c.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String(), Wall: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running pith: %v", err)
	}
	return r
}
