// Package tier0check enforces the tier-0 rules of DESIGN.md on the built kernel: no
// tier-0 function may reach the allocator, a write barrier, the stack-growth path or a
// panic helper, and the instruction offsets the entry assembly relies on must hold.
package tier0check

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/pithvm/pith/test/testenv"
)

const tier0Prefix = "github.com/pithvm/pith/guest/tier0."

// forbidden matches what tier-0 code must never reach.
var forbidden = regexp.MustCompile(`^runtime\.(mallocgc|newobject|gcWriteBarrier|wbBuf|morestack|panic|goPanic|throw|fatal|growslice|makeslice|newstack)`)

type function struct {
	name   string
	insns  []insn
	callee map[string]bool
}

type insn struct {
	addr uint64
	size uint64
	text string
}

var (
	textLine = regexp.MustCompile(`^TEXT (\S+)\(SB\)`)
	insnLine = regexp.MustCompile(`^\s+\S+\s+0x([0-9a-f]+)\s+([0-9a-f]+)\s+(.*)$`)
	target   = regexp.MustCompile(`^(CALL|JMP) (\S+)\(SB\)`)
	indirect = regexp.MustCompile(`^CALL [A-Z0-9]+$|^CALL .*\)$`)
)

func disassemble(t *testing.T) map[string]*function {
	_, kernel := testenv.Build(t)
	out, err := exec.Command("go", "tool", "objdump", kernel).Output()
	if err != nil {
		t.Fatalf("go tool objdump: %v", err)
	}
	funcs := map[string]*function{}
	var cur *function
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := textLine.FindStringSubmatch(line); m != nil {
			cur = &function{name: m[1], callee: map[string]bool{}}
			funcs[cur.name] = cur
			continue
		}
		m := insnLine.FindStringSubmatch(line)
		if m == nil || cur == nil {
			continue
		}
		var a uint64
		fmt.Sscanf(m[1], "%x", &a)
		text := strings.TrimSpace(m[3])
		cur.insns = append(cur.insns, insn{a, uint64(len(m[2]) / 2), text})
		if tm := target.FindStringSubmatch(text); tm != nil && tm[2] != cur.name {
			cur.callee[tm[2]] = true
		} else if indirect.MatchString(text) {
			cur.callee["<indirect call: "+text+">"] = true
		}
	}
	return funcs
}

func TestTier0ReachesNothingForbidden(t *testing.T) {
	funcs := disassemble(t)
	// Breadth-first from every tier-0 function, remembering how each was reached.
	from := map[string]string{}
	var queue []string
	for name := range funcs {
		if strings.HasPrefix(name, tier0Prefix) {
			from[name] = ""
			queue = append(queue, name)
		}
	}
	if len(queue) < 20 {
		t.Fatalf("found only %d tier-0 functions in the kernel: is the disassembly parsed?", len(queue))
	}
	sort.Strings(queue)
	var bad []string
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if forbidden.MatchString(name) || strings.HasPrefix(name, "<indirect") {
			chain := name
			for p := from[name]; p != ""; p = from[p] {
				chain = p + " -> " + chain
			}
			bad = append(bad, chain)
			continue
		}
		f := funcs[name]
		if f == nil {
			continue
		}
		callees := make([]string, 0, len(f.callee))
		for c := range f.callee {
			callees = append(callees, c)
		}
		sort.Strings(callees)
		for _, c := range callees {
			if _, seen := from[c]; !seen {
				from[c] = name
				queue = append(queue, c)
			}
		}
	}
	for _, b := range bad {
		t.Errorf("tier 0 can reach a forbidden function: %s", b)
	}
	t.Logf("checked %d functions reachable from tier 0", len(from))
}

// The check must be able to fail: the Go runtime itself reaches every forbidden helper.
func TestForbiddenPatternCatchesTheRuntime(t *testing.T) {
	funcs := disassemble(t)
	for _, want := range []string{"runtime.mallocgc", "runtime.newobject", "runtime.morestack", "runtime.panicIndex", "runtime.gcWriteBarrier2"} {
		if funcs[want] == nil {
			continue // not linked into this kernel
		}
		if !forbidden.MatchString(want) {
			t.Errorf("%s is not matched by the forbidden pattern", want)
		}
	}
	if f := funcs["runtime.growslice"]; f == nil || !f.callee["runtime.mallocgc"] {
		t.Errorf("could not see runtime.growslice call runtime.mallocgc: the call graph is not being parsed")
	}
}

// The entry assembly patches return addresses inside idle and iretToUser by offset.
func TestEntryOffsets(t *testing.T) {
	funcs := disassemble(t)
	for _, c := range []struct {
		fn     string
		offset uint64 // from guest/tier0/state.go
		want   string
	}{
		{tier0Prefix + "idle.abi0", 9, "HLT"},
		{tier0Prefix + "idle.abi0", 10, "CLI"},
		{tier0Prefix + "iretToUser.abi0", 8, "IRETQ"},
	} {
		f := assembled(t, funcs, c.fn)
		if f == nil {
			continue
		}
		base := f.insns[0].addr
		found := false
		for _, in := range f.insns {
			if in.addr-base == c.offset {
				found = true
				if !strings.HasPrefix(in.text, c.want) {
					t.Errorf("%s+%d is %q, want %s", c.fn, c.offset, in.text, c.want)
				}
			}
		}
		if !found {
			t.Errorf("%s has no instruction at offset %d", c.fn, c.offset)
		}
	}
}

// assembled is the disassembly of assembly function name (its ABI0 symbol, or the plain
// one where the linker kept no suffix); nil, reported, if there is none.
func assembled(t *testing.T, funcs map[string]*function, name string) *function {
	f := funcs[name]
	if f == nil {
		f = funcs[strings.TrimSuffix(name, ".abi0")]
	}
	if f == nil || len(f.insns) == 0 {
		t.Errorf("%s not found", name)
		return nil
	}
	return f
}

// syncApp recognises a thread inside the switch code by its address and the code's
// length (guest/tier0/fastswitch.go), which must end where each function does.
func TestSwitchCodeLengths(t *testing.T) {
	funcs := disassemble(t)
	for _, c := range []struct {
		fn     string
		length uint64 // from guest/tier0/fastswitch.go
	}{
		{tier0Prefix + "tier1Enter.abi0", 134},
		{tier0Prefix + "appExit.abi0", 128},
		{tier0Prefix + "appExitCommit.abi0", 56},
	} {
		f := assembled(t, funcs, c.fn)
		if f == nil {
			continue
		}
		last := f.insns[len(f.insns)-1]
		if got := last.addr + last.size - f.insns[0].addr; got != c.length {
			t.Errorf("%s is %d bytes long, fastswitch.go says %d", c.fn, got, c.length)
		}
	}
}

// guest/tier0/vectors_amd64.s is what gen_vectors.go makes (go generate ./guest/tier0).
func TestVectorStubsAreGenerated(t *testing.T) {
	dir := t.TempDir()
	gen, err := os.ReadFile(filepath.Join(testenv.Root(), "guest", "tier0", "gen_vectors.go"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "gen_vectors.go"), gen, 0o644); err != nil {
		t.Fatal(err)
	}
	c := exec.Command("go", "run", "gen_vectors.go")
	c.Dir = dir
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go run gen_vectors.go: %v\n%s", err, out)
	}
	want, _ := os.ReadFile(filepath.Join(dir, "vectors_amd64.s"))
	got, err := os.ReadFile(filepath.Join(testenv.Root(), "guest", "tier0", "vectors_amd64.s"))
	if err != nil || len(want) == 0 || string(got) != string(want) {
		t.Errorf("guest/tier0/vectors_amd64.s is not what gen_vectors.go makes (%v): run go generate ./guest/tier0", err)
	}
}
