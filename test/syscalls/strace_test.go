// Package syscalls checks that tier 0 answers every system call the Go runtime makes: it
// runs the self-test natively under strace and compares the calls with tier 0's dispatch.
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
