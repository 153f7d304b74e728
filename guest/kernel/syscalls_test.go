package kernel

import "testing"

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
	if c := syscalls[19]; c.name != "readv" || c.handler != nil {
		t.Errorf("readv: %+v", c)
	}
}
