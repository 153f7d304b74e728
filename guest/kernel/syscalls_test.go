package kernel

import (
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
