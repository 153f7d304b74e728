// Package e2e boots real guests on /dev/kvm through the pith command and checks what a
// user sees: output, exit statuses and error messages.
package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pithvm/pith/test/testenv"
)

func TestSelftestPasses(t *testing.T) {
	testenv.RequireKVM(t)
	r := testenv.Pith(t, nil, "selftest")
	if r.Code != 0 {
		t.Fatalf("pith selftest exited %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	for _, check := range []string{"goroutines", "gc-churn", "sleep", "ticker", "cpu-bound-vs-ticker", "monotonic", "clocks", "panic-recover", "cpus"} {
		if !regexp.MustCompile(`(?m)^ok +` + regexp.QuoteMeta(check) + ` `).MatchString(r.Stdout) {
			t.Errorf("check %s did not pass:\n%s", check, r.Stdout)
		}
	}
	if !strings.Contains(r.Stdout, "PASS selftest") {
		t.Errorf("no PASS verdict:\n%s", r.Stdout)
	}
	m := regexp.MustCompile(`info traps=(\d+) exits=(\d+)`).FindStringSubmatch(r.Stdout)
	if m == nil || m[1] == "0" {
		t.Errorf("report lacks trap and exit counts:\n%s", r.Stdout)
	}
	if !strings.Contains(r.Stdout, "10000 goroutines") || !strings.Contains(r.Stdout, "NumCPU 1, GOMAXPROCS 1") {
		t.Errorf("report lacks details:\n%s", r.Stdout)
	}
}

// With several vCPUs every check must pass too, and the runtime must see them all.
func TestSelftestOnSeveralCPUs(t *testing.T) {
	testenv.RequireKVM(t)
	for _, cpus := range []string{"2", "3"} {
		// 512 MiB: on a busy 2-core host the vCPUs starve each other and the garbage
		// collector falls behind the churn check (docs/architecture.md, GOMEMLIMIT).
		r := testenv.Pith(t, nil, "selftest", "--cpus", cpus, "-m", "512m", "--timing")
		if r.Code != 0 || !strings.Contains(r.Stdout, "PASS selftest") {
			t.Fatalf("--cpus %s: exit %d\n%s%s", cpus, r.Code, r.Stdout, r.Stderr)
		}
		if !strings.Contains(r.Stdout, "NumCPU "+cpus+", GOMAXPROCS "+cpus) {
			t.Errorf("--cpus %s: runtime does not see them:\n%s", cpus, r.Stdout)
		}
		if !strings.Contains(r.Stderr, cpus+" vCPUs online") {
			t.Errorf("--cpus %s: not every vCPU came online:\n%s", cpus, r.Stderr)
		}
	}
}

func TestSelftestInjectedFailureExitsNonZero(t *testing.T) {
	testenv.RequireKVM(t)
	r := testenv.Pith(t, nil, "selftest", "--inject-failure=ticker")
	if r.Code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if !regexp.MustCompile(`(?m)^FAIL ticker .*injected`).MatchString(r.Stdout) || !strings.Contains(r.Stdout, "FAIL selftest") {
		t.Errorf("report does not show the injected failure:\n%s", r.Stdout)
	}
	if !regexp.MustCompile(`(?m)^ok +goroutines`).MatchString(r.Stdout) {
		t.Errorf("the other checks should still pass:\n%s", r.Stdout)
	}
}

func TestGuestExitStatusIsPithsExitStatus(t *testing.T) {
	testenv.RequireKVM(t)
	// An unknown check name is a usage error inside the guest: the kernel exits 2.
	r := testenv.Pith(t, nil, "selftest", "--only=cpus", "--inject-failure=cpus")
	if r.Code != 1 {
		t.Fatalf("exit %d, want the guest's 1\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = testenv.Pith(t, nil, "selftest", "--only=cpus")
	if r.Code != 0 || !strings.Contains(r.Stdout, "ok   cpus") {
		t.Fatalf("exit %d, want 0\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

func TestTier0CrashIsReported(t *testing.T) {
	testenv.RequireKVM(t)
	r := testenv.Pith(t, nil, "selftest", "--inject-failure=tier0-fault")
	if r.Code != 125 {
		t.Fatalf("exit %d, want 125\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	first := strings.SplitN(r.Stderr, "\n", 2)[0]
	want := regexp.MustCompile(`^pith: guest crashed: page fault in tier 0 at address 0x10, RIP 0x[0-9a-f]+ in github.com/pithvm/pith/guest/tier0\.`)
	if !want.MatchString(first) {
		t.Errorf("first line %q does not match %v", first, want)
	}
	if !strings.Contains(r.Stderr, "rsp ") || !strings.Contains(r.Stderr, "rflags") {
		t.Errorf("no registers in the report:\n%s", r.Stderr)
	}
}

func TestTier1CrashIsReported(t *testing.T) {
	testenv.RequireKVM(t)
	r := testenv.Pith(t, nil, "selftest", "--inject-failure=tier1-fault")
	if r.Code != 125 {
		t.Fatalf("exit %d, want 125\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	want := regexp.MustCompile(`^pith: guest crashed: page fault in tier 1 at address 0x18, RIP 0x[0-9a-f]+ in main\.runSelftest`)
	if first := strings.SplitN(r.Stderr, "\n", 2)[0]; !want.MatchString(first) {
		t.Errorf("first line %q does not match %v", first, want)
	}
}

func TestBadKernelIsRefused(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text")
	os.WriteFile(text, []byte("not a kernel\n"), 0o644)
	for _, tc := range []struct {
		kernel, want string
	}{
		{filepath.Join(dir, "missing"), "does not exist"},
		{text, "is not an ELF file"},
		{"/bin/true", "is not a static x86-64 executable"},
	} {
		r := testenv.Pith(t, []string{"PITH_KERNEL=" + tc.kernel}, "selftest")
		lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
		if r.Code != 125 || len(lines) != 1 || !strings.Contains(lines[0], tc.want) || !strings.HasPrefix(lines[0], "pith: ") {
			t.Errorf("kernel %s: exit %d, stderr %q; want 125 and one line containing %q", tc.kernel, r.Code, r.Stderr, tc.want)
		}
	}
}

func TestBadFlagsAreRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"selftest", "-m", "1m"}, "below the 32 MiB"},
		{[]string{"selftest", "-m", "lots"}, "bad memory size"},
		{[]string{"selftest", "--cpus", "0"}, "1 to 16 vCPUs"},
		{[]string{"selftest", "--cpus", "17"}, "1 to 16 vCPUs"},
		{[]string{"selftest", "-e", "NOEQUALS"}, "use KEY=VALUE"},
	} {
		r := testenv.Pith(t, nil, tc.args...)
		if r.Code != 125 || !strings.Contains(r.Stderr, tc.want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want 125 and one line containing %q", tc.args, r.Code, r.Stderr, tc.want)
		}
	}
}

func TestOutOfMemoryIsReported(t *testing.T) {
	testenv.RequireKVM(t)
	r := testenv.Pith(t, nil, "selftest", "-m", "64m", "--inject-failure=oom")
	if r.Code != 125 {
		t.Fatalf("exit %d, want 125\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if first := strings.SplitN(r.Stderr, "\n", 2)[0]; first != "pith: guest out of memory: raise -m (now 64 MiB)" {
		t.Errorf("first line %q", first)
	}
}
