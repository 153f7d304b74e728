package cli

import (
	"encoding/hex"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
)

// --spawned-fds carries the descriptors above 2 a started program inherits; a malformed
// one is refused, never half read.
func TestInheritedFilesFlag(t *testing.T) {
	// The files a started pith is given at descriptors of its own: two of this test's.
	var fds [2]int
	for i := range fds {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		fds[i], err = unix.Dup(int(f.Fd()))
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	spec := fmt.Sprintf("3:%d:4:0x401:1:%s,63:%d:6:0:0:", fds[0], hex.EncodeToString([]byte("/work/a:b,c")), fds[1])
	files, err := inheritedFiles(spec)
	if err != nil || len(files) != 2 {
		t.Fatalf("inheritedFiles = %v, %v", files, err)
	}
	a, b := files[0], files[1]
	defer a.File.Close()
	defer b.File.Close()
	if a.FD != 3 || a.Kind != abi.SpawnFile || a.File.Fd() != uintptr(fds[0]) || a.Flags != 0x401 || !a.Writable || a.Path != "/work/a:b,c" {
		t.Errorf("first = %+v", a)
	}
	if b.FD != 63 || b.Kind != abi.SpawnPipeOut || b.File.Fd() != uintptr(fds[1]) || b.Flags != 0 || b.Writable || b.Path != "" {
		t.Errorf("second = %+v", b)
	}
	for _, bad := range []string{"3:5:4:0:0", "-1:5:4:0:0:", "3:2:4:0:0:", "3:5:4:0x100000000:0:", "3:5:4:0:0:zz",
		"x:5:4:0:0:", "3:5:2:0:0:"} {
		if files, err := inheritedFiles(bad); err == nil {
			t.Errorf("inheritedFiles(%q) = %v, want an error", bad, files)
		}
	}
	if files, err := inheritedFiles(""); err != nil || files != nil {
		t.Errorf("inheritedFiles(\"\") = %v, %v", files, err)
	}
}
