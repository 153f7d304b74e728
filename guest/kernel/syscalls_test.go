package kernel

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pithvm/pith/abi"
)

// One table names and serves every call: no served call prints as syscall_N under
// --trace, and no two numbers share a name.
func TestSyscallTableNamesEveryCall(t *testing.T) {
	seen := map[string]uint64{}
	for nr, c := range syscalls {
		if c.name == "" {
			t.Errorf("call %d has no name", nr)
		}
		if other, dup := seen[c.name]; dup {
			t.Errorf("calls %d and %d are both named %s", nr, other, c.name)
		}
		seen[c.name] = nr
	}
	// Calls once served without a name (--trace printed syscall_N), and ones named
	// as unsupported once served.
	for nr, name := range map[uint64]string{26: "msync", 73: "flock", 75: "fdatasync", 247: "waitid",
		280: "utimensat", 285: "fallocate", 326: "copy_file_range", 434: "pidfd_open",
		4: "stat", 262: "newfstatat", 59: "execve", 61: "wait4"} {
		if c := syscalls[nr]; c.name != name || c.handler == nil {
			t.Errorf("call %d: name %q, served %v; want %s, served", nr, c.name, c.handler != nil, name)
		}
	}
	if c := syscalls[19]; c.name != "readv" || c.handler == nil {
		t.Errorf("readv: %q, served %v", c.name, c.handler != nil)
	}
}

// The helpers handlers reach app memory through refuse what is not the app's: the first
// 2 MiB, the kernel's physmap, addresses past user space, and ranges that wrap.
func TestAppMemoryRefusesWhatIsNotTheApps(t *testing.T) {
	for _, addr := range []uint64{0, 0x1000, abi.LowMapEnd - 8, abi.PhysBase, abi.PhysBase + abi.PhysSpan - 4,
		0x7ffffffff000, ^uint64(0) - 3} {
		if putApp(addr, uint64(1)) {
			t.Errorf("putApp(%#x) wrote", addr)
		}
		if _, ok := getApp[uint64](addr); ok {
			t.Errorf("getApp(%#x) read", addr)
		}
		if copyIn(addr, make([]byte, 8)) || copyOut(addr, make([]byte, 8)) {
			t.Errorf("copyIn or copyOut at %#x went through", addr)
		}
		if _, ok := appSlice(addr, 8); ok {
			t.Errorf("appSlice(%#x) went through", addr)
		}
	}
}

// docs/syscalls.md is made from the table: the test fails while it is stale, and
// PITH_UPDATE_DOCS=1 rewrites it.
func TestSyscallsDoc(t *testing.T) {
	var b strings.Builder
	b.WriteString(`# The system calls pith serves

Made from tier 1's table (guest/kernel/syscalls.go) by
` + "`PITH_UPDATE_DOCS=1 go test ./guest/kernel -run TestSyscallsDoc`" + `; do not edit.
A number not listed answers ENOSYS, and pith says so on stderr the first time. Tier 0
answers the calls marked "tier 0 serves it" itself, most without tier 1 (guest/tier0/
syscall.go), and a Go program's getpid, getppid and get[e]uid/gid never leave it
(guest/kernel/fastcall.go).

| number | call | how |
| ---: | --- | --- |
`)
	nrs := make([]uint64, 0, len(syscalls))
	for nr := range syscalls {
		nrs = append(nrs, nr)
	}
	slices.Sort(nrs)
	for _, nr := range nrs {
		c := syscalls[nr]
		how := c.note
		switch {
		case c.handler == nil:
			how = "not yet: ENOSYS, reported"
		case how == "":
			how = "served"
		}
		fmt.Fprintf(&b, "| %d | %s | %s |\n", nr, c.name, how)
	}
	path := filepath.Join("..", "..", "docs", "syscalls.md")
	if os.Getenv("PITH_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != b.String() {
		t.Errorf("docs/syscalls.md is stale (%v): PITH_UPDATE_DOCS=1 go test ./guest/kernel -run TestSyscallsDoc", err)
	}
}
