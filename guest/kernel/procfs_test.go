package kernel

import (
	"reflect"
	"strings"
	"testing"
)

func TestProcRel(t *testing.T) {
	for p, want := range map[string]string{
		"/proc": "", "/proc/self": "self", "/proc/1/maps": "self/maps", "/proc/self/fd/3": "self/fd/3",
		"/proc/thread-self/comm": "self/comm", "/proc/cpuinfo": "cpuinfo", "/proc/2/stat": "2/stat",
	} {
		if rel, ok := procRel(p); !ok || rel != want {
			t.Errorf("procRel(%q) = %q, %v; want %q", p, rel, ok, want)
		}
	}
	for _, p := range []string{"/", "/procfs", "/proc2/x", "/etc/proc"} {
		if rel, ok := procRel(p); ok {
			t.Errorf("procRel(%q) = %q: want it outside /proc", p, rel)
		}
	}
}

// An unmapped range splits the mappings it cuts through, keeping their file offsets.
func TestCutMappings(t *testing.T) {
	ms := []mapping{{start: 0x1000, end: 0x5000, off: 0x10000, name: "lib"}, {start: 0x8000, end: 0x9000}}
	got := cutMappings(ms, 0x2000, 0x3000)
	want := []mapping{{start: 0x1000, end: 0x2000, off: 0x10000, name: "lib"}, {start: 0x3000, end: 0x5000, off: 0x12000, name: "lib"},
		{start: 0x8000, end: 0x9000}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cutMappings = %+v; want %+v", got, want)
	}
	if got := cutMappings(ms, 0, 0x10000); len(got) != 0 {
		t.Errorf("cutting everything left %+v", got)
	}
}

// /proc/self/maps lists mappings in address order, in Linux's format, with the
// stack glibc looks for.
func TestMaps(t *testing.T) {
	p := &Process{brkStart: 0x600000, brk: 0x600010}
	p.mapped(mapping{start: 0x7f0000000000, end: 0x7f0000002000, prot: 5, name: "/lib/x86_64-linux-gnu/libc.so.6"})
	p.mapped(mapping{start: 0x400000, end: 0x401000, prot: 1, name: "/bin/app"})
	lines := strings.Split(strings.TrimSpace(p.maps()), "\n")
	if len(lines) != 5 {
		t.Fatalf("maps:\n%s\nwant 5 lines", p.maps())
	}
	for i, want := range []string{"00006000-00007000 r-xp", "00400000-00401000 r--p 00000000 00:00 0", "00600000-00601000 rw-p",
		"7f0000000000-7f0000002000 r-xp", "7ffdff800000-7ffe00000000 rw-p"} {
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("line %d: %q; want it to start %q", i, lines[i], want)
		}
	}
	if !strings.HasSuffix(lines[1], " /bin/app") || len(lines[1]) != 73+len("/bin/app") || !strings.HasSuffix(lines[4], "[stack]") {
		t.Errorf("names: %q, %q", lines[1], lines[4])
	}
}
