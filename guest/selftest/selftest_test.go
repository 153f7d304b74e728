package selftest

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

// The checks are ordinary Go: they must pass natively, so that a failure inside pith
// points at tier 0.
func TestChecksPassNatively(t *testing.T) {
	var out bytes.Buffer
	if !Run(&out, Config{Memory: 64 << 20, CPUs: runtime.NumCPU()}) {
		t.Fatalf("selftest failed natively:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "PASS selftest") {
		t.Fatalf("no verdict line:\n%s", out.String())
	}
}

func TestInjectedFailure(t *testing.T) {
	var out bytes.Buffer
	if Run(&out, Config{Memory: 64 << 20, Inject: "cpus"}) {
		t.Fatalf("injected failure passed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "FAIL cpus") || !strings.Contains(out.String(), "FAIL selftest") {
		t.Fatalf("report does not show the injected failure:\n%s", out.String())
	}
}
