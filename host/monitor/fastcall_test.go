package monitor

import (
	"debug/elf"
	"debug/gosym"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// The scan finds exactly Go's two system-call functions, where the symbol table says they
// are, in a Go executable (this test's own, by its function table), and nothing in a program not built by Go.
func TestFastCallSitesAreGosSyscallFunctions(t *testing.T) {
	syscall.Getppid() // links syscall.rawSyscallNoError into this binary
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	image, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pcln, err := f.Section(".gopclntab").Data()
	if err != nil {
		t.Fatal(err)
	}
	table, err := gosym.NewTable(nil, gosym.NewLineTable(pcln, f.Section(".text").Addr))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for kind, name := range []string{"internal/runtime/syscall/linux.Syscall6", "syscall.rawSyscallNoError"} {
		if fn := table.LookupFunc(name); fn != nil {
			want = append(want, fmt.Sprintf("%d@%#x", kind, fn.Entry))
		}
	}
	got := strings.Split(fastCallSites(image), ",")
	sort.Strings(got)
	sort.Strings(want)
	if len(want) != 2 || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("sites %v, want %v (from the symbol table)", got, want)
	}
	sh, err := os.ReadFile("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	if s := fastCallSites(sh); s != "" {
		t.Errorf("/bin/sh, not a Go program: sites %q", s)
	}
}
