package fileservice

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestProjectOf(t *testing.T) {
	top := t.TempDir()
	nested := filepath.Join(top, "a", "b")
	if err := os.MkdirAll(nested, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := projectOf(nested); got != nested {
		t.Errorf("no go.mod or .git: projectOf = %s, want the directory itself", got)
	}
	os.Mkdir(filepath.Join(top, ".git"), 0o755)
	if got := projectOf(nested); got != top {
		t.Errorf(".git above: projectOf = %s, want %s", got, top)
	}
	os.WriteFile(filepath.Join(top, "a", "go.mod"), []byte("module a\n"), 0o644)
	if got, want := projectOf(nested), filepath.Join(top, "a"); got != want {
		t.Errorf("go.mod nearer than .git: projectOf = %s, want %s", got, want)
	}
}

// The directories above a mount point exist in the guest, as on Linux (net/http's
// http.Dir stats each one to tell a missing file from a path through a file).
func TestDirectoriesAboveMountsExist(t *testing.T) {
	s, err := New(Options{Exe: "/bin/true", Mounts: []Mount{{Host: t.TempDir(), Guest: "/usr/local/go"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, p := range []string{"/usr", "/usr/local"} {
		dir, rel, writable, err := s.resolve(p)
		if err != nil || writable {
			t.Errorf("resolve(%s): %v, writable %v", p, err, writable)
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(int(dir.Fd()), rel, &st, 0); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			t.Errorf("%s: mode %o, %v; want a directory", p, st.Mode, err)
		}
	}
	for _, p := range []string{"/usr/lib", "/nowhere", "/usr/local/g"} {
		if _, _, _, err := s.resolve(p); err != unix.ENOENT {
			t.Errorf("resolve(%s): %v; want ENOENT", p, err)
		}
	}
}
