// Package syscalls checks that pith answers the system calls programs make: it runs the
// self-test, a Go program and C programs natively under strace and compares the calls
// with tier 0's dispatch and tier 1's table.
package syscalls

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/pithvm/pith/test/testenv"
)

// handledByTier0 returns the system call numbers tier 0's dispatch has a case for.
func handledByTier0(t *testing.T) map[int]bool {
	file := filepath.Join(testenv.Root(), "guest", "tier0", "syscall.go")
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]int{}
	var dispatch *ast.FuncDecl
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.ValueSpec:
			for i, name := range n.Names {
				if i < len(n.Values) {
					if lit, ok := n.Values[i].(*ast.BasicLit); ok && lit.Kind == token.INT {
						v, _ := strconv.ParseInt(lit.Value, 0, 64)
						values[name.Name] = int(v)
					}
				}
			}
		case *ast.FuncDecl:
			if n.Name.Name == "dispatch" {
				dispatch = n
			}
		}
		return true
	})
	if dispatch == nil {
		t.Fatalf("no dispatch function in %s", file)
	}
	handled := map[int]bool{}
	ast.Inspect(dispatch, func(n ast.Node) bool {
		if cc, ok := n.(*ast.CaseClause); ok {
			for _, e := range cc.List {
				if id, ok := e.(*ast.Ident); ok {
					if v, ok := values[id.Name]; ok {
						handled[v] = true
					}
				}
			}
		}
		return true
	})
	if len(handled) < 30 {
		t.Fatalf("found only %d handled system calls in dispatch: parser out of date?", len(handled))
	}
	return handled
}

// linuxNumbers maps system call names to numbers, from golang.org/x/sys/unix.
func linuxNumbers(t *testing.T) map[string]int {
	dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "golang.org/x/sys").Output()
	if err != nil {
		t.Fatalf("locating golang.org/x/sys: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(dir)), "unix", "zsysnum_linux_amd64.go"))
	if err != nil {
		t.Fatal(err)
	}
	nums := map[string]int{}
	for _, m := range regexp.MustCompile(`SYS_([A-Z0-9_]+)\s*=\s*(\d+)`).FindAllStringSubmatch(string(data), -1) {
		n, _ := strconv.Atoi(m[2])
		nums[strings.ToLower(m[1])] = n
	}
	return nums
}

func TestTier0HandlesEverySyscallTheRuntimeMakes(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Fatalf("strace is not installed (tools/test.sh installs it): %v", err)
	}
	bin := filepath.Join(t.TempDir(), "refprog")
	build := exec.Command("go", "build", "-o", bin, "./test/syscalls/refprog")
	build.Dir = testenv.Root()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the reference program: %v\n%s", err, out)
	}
	trace := filepath.Join(t.TempDir(), "trace")
	if out, err := exec.Command(strace, "-f", "-qq", "-o", trace, bin).CombinedOutput(); err != nil {
		t.Fatalf("strace %s: %v\n%s", bin, err, out)
	}
	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	call := regexp.MustCompile(`^\d+\s+(?:<\.\.\. )?([a-z_0-9]+)[( ]`)
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := call.FindStringSubmatch(sc.Text()); m != nil {
			seen[m[1]]++
		}
	}
	seen["execve"]-- // strace's own exec of the program
	nums := linuxNumbers(t)
	handled := handledByTier0(t)
	var names []string
	for name, n := range seen {
		if n > 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) < 10 {
		t.Fatalf("the trace shows only %v: strace output not parsed", names)
	}
	for _, name := range names {
		nr, ok := nums[name]
		if !ok {
			t.Errorf("strace reported %q, which golang.org/x/sys does not know", name)
			continue
		}
		if !handled[nr] {
			t.Errorf("the Go runtime calls %s (%d) %d times natively, and tier 0 does not handle it", name, nr, seen[name])
		}
	}
	t.Logf("the reference program made %d distinct system calls: %v", len(names), names)
}

// servedByTier1 returns the system call numbers tier 1's table serves (a handler that is
// not nil), by parsing its literal in guest/kernel/syscalls.go.
func servedByTier1(t *testing.T, nums map[string]int) map[int]bool {
	file := filepath.Join(testenv.Root(), "guest", "kernel", "syscalls.go")
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	served := map[int]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		kv, ok := n.(*ast.KeyValueExpr)
		if !ok {
			return true
		}
		key, ok := kv.Key.(*ast.SelectorExpr)
		entry, ok2 := kv.Value.(*ast.CompositeLit)
		if !ok || !ok2 || !strings.HasPrefix(key.Sel.Name, "SYS_") || len(entry.Elts) < 2 {
			return true
		}
		nr, known := nums[strings.ToLower(strings.TrimPrefix(key.Sel.Name, "SYS_"))]
		if !known {
			t.Errorf("tier 1's table names %s, which golang.org/x/sys does not know", key.Sel.Name)
		}
		if id, isNil := entry.Elts[1].(*ast.Ident); !isNil || id.Name != "nil" {
			served[nr] = true
		}
		return true
	})
	if len(served) < 60 {
		t.Fatalf("found only %d served calls in tier 1's table: parser out of date?", len(served))
	}
	return served
}

// traced runs a program natively under strace and returns the calls it made, by name.
func traced(t *testing.T, strace string, args ...string) map[string]bool {
	out := filepath.Join(t.TempDir(), "trace")
	c := exec.Command(strace, append([]string{"-f", "-qq", "-o", out}, args...)...)
	c.Dir = t.TempDir()
	c.Run() // some modes exit non-zero or die of a signal on purpose
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	call := regexp.MustCompile(`(?m)^\d+\s+(?:<\.\.\. )?([a-z_0-9]+)[( ]`)
	seen := map[string]bool{}
	for _, m := range call.FindAllStringSubmatch(string(data), -1) {
		seen[m[1]] = true
	}
	return seen
}

// Every call a Go program (the e2e tests' probe, in the modes that use files, threads,
// signals and other programs) and a C program make natively is served by one tier or
// the other: a call neither serves would be ENOSYS inside.
func TestAppsCallsAreServed(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Fatalf("strace is not installed (tools/test.sh installs it): %v", err)
	}
	nums := linuxNumbers(t)
	tier0, tier1 := handledByTier0(t), servedByTier1(t, nums)
	// Made natively only in ways pith never leads to.
	notReached := map[string]string{
		"pidfd_send_signal": "needs the descriptor pidfd_open gives; pith answers it ENOSYS",
		"restart_syscall":   "Linux resumes an interrupted sleep with it; pith never sets one up",
	}
	probe, csys := testenv.Program(t, "probe"), testenv.Program(t, "csys")
	runs := [][]string{{testenv.Program(t, "chello-static"), "arg"}}
	for _, mode := range []string{"files", "tmpops", "threads", "sleep", "signal", "spawn", "sigchld", "readv", "efault", "eintr", "loopback", "neterrors", "tls", "unix"} {
		runs = append(runs, []string{probe, mode})
	}
	for _, mode := range []string{"gettimeofday", "blocked-ignored", "stop-default", "bad-act", "bad-frame"} {
		runs = append(runs, []string{csys, mode})
	}
	calls := map[string][]string{}
	for _, run := range runs {
		for name := range traced(t, strace, run...) {
			calls[name] = append(calls[name], filepath.Base(run[0])+" "+run[1])
		}
	}
	calls["execve"] = calls["execve"][1:] // strace's own exec of each program
	if len(calls) < 30 {
		t.Fatalf("the traces show only %d calls: strace output not parsed", len(calls))
	}
	for name, by := range calls {
		nr, ok := nums[name]
		switch {
		case len(by) == 0 || notReached[name] != "":
		case !ok:
			t.Errorf("strace reported %q, which golang.org/x/sys does not know", name)
		case !tier0[nr] && !tier1[nr]:
			t.Errorf("%s (%d), made natively by %v, is served by neither tier", name, nr, by)
		}
	}
}
