// Package boundary checks the host/guest boundary: abi is the only package both sides
// import, tier 0 imports nothing but abi and the runtime-free standard packages, and
// no host package reaches guest code or the reverse.
package boundary

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/pithvm/pith/test/testenv"
)

const module = "github.com/pithvm/pith/"

// deps lists each of the module's packages under dir with every package it depends on.
func deps(t *testing.T, dir string) map[string][]string {
	t.Helper()
	c := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "./"+dir+"/...")
	c.Dir = testenv.Root()
	out, err := c.Output()
	if err != nil {
		t.Fatalf("go list ./%s/...: %v", dir, err)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		m[f[0]] = f[1:]
	}
	if len(m) == 0 {
		t.Fatalf("go list ./%s/... found no packages", dir)
	}
	return m
}

func TestHostAndGuestMeetOnlyInABI(t *testing.T) {
	for _, side := range []struct{ dir, forbidden string }{
		{"host", module + "guest/"},
		{"cmd", module + "guest/"},
		{"guest", module + "host/"},
		{"abi", module},
		{"guest/linux", ""},
	} {
		for pkg, ds := range deps(t, side.dir) {
			for _, d := range ds {
				if strings.HasPrefix(d, side.forbidden) {
					t.Errorf("%s depends on %s", strings.TrimPrefix(pkg, module), strings.TrimPrefix(d, module))
				}
			}
		}
	}
}

// Tier 0 runs without a Go runtime of its own (DESIGN's tier-0 rules): it may use abi,
// guest/linux's constants and packages the compiler turns into instructions, nothing
// that brings code in; guest/linux itself imports nothing.
func TestTier0ImportsNothingThatRuns(t *testing.T) {
	allowed := map[string]bool{module + "abi": true, module + "guest/linux": true, module + "guest/x86": true, "math/bits": true, "sync/atomic": true, "unsafe": true}
	c := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, "./guest/tier0")
	c.Dir = testenv.Root()
	out, err := c.Output()
	if err != nil {
		t.Fatalf("go list ./guest/tier0: %v", err)
	}
	for _, imp := range strings.Fields(string(out)) {
		if !allowed[imp] {
			t.Errorf("tier 0 imports %s", imp)
		}
	}
}
