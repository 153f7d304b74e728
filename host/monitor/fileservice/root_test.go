package fileservice

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
)

// An image's files are the guest's /, read-only, with the guest's own /tmp, $HOME and
// /etc/{hosts,resolv.conf,hostname} over them; the host's project is not shown. A
// program the guest starts (SharedRoot) sees the same tree.
func TestImageRoot(t *testing.T) {
	img := t.TempDir()
	for name, content := range map[string]string{
		"usr/local/bin/app": "the program",
		"etc/passwd":        "app:x:1000:1000::/home/app:/sbin/nologin\n",
		"etc/hosts":         "the image's hosts\n",
		"data/file":         "image data",
	} {
		p := filepath.Join(img, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("/data/file", filepath.Join(img, "abs-link"))
	project := t.TempDir()
	os.WriteFile(filepath.Join(project, "go.mod"), []byte("module x\n"), 0o644)
	t.Chdir(project)

	s, err := New(Options{Exe: filepath.Join(img, "usr/local/bin/app"), Root: img, Home: "/root", Hostname: "box",
		Hosts: []Host{{IP: netip.MustParseAddr("10.0.2.15"), Name: "box"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	read := func(s *Service, p string) (string, error) {
		f, _, err := s.open(p, unix.O_RDONLY)
		if err != nil {
			return "", err
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		return string(b), err
	}
	for p, want := range map[string]string{
		"/usr/local/bin/app": "the program",
		"/etc/passwd":        "app:x:1000",     // the image's
		"/etc/hosts":         "10.0.2.15\tbox", // the guest's, over the image's
		"/etc/hostname":      "box",
		"/abs-link":          "image data", // an absolute link, inside the image
	} {
		if got, err := read(s, p); err != nil || !strings.Contains(got, want) {
			t.Errorf("%s: %q %v, want %q", p, got, err, want)
		}
	}
	if _, err := read(s, filepath.Join(project, "go.mod")); !errors.Is(err, unix.ENOENT) {
		t.Errorf("the host project through an image root: %v, want ENOENT", err)
	}
	// Writes beneath the image go to the guest's own layer (layer_test.go), never to it.
	for _, p := range []string{"/new", "/data/file", "/usr/local/bin/app"} {
		f, _, err := s.open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC)
		if err != nil {
			t.Errorf("writing %s: %v", p, err)
			continue
		}
		f.Close()
	}
	if b, _ := os.ReadFile(filepath.Join(img, "data/file")); string(b) != "image data" {
		t.Errorf("a write to /data/file changed the image: %q", b)
	}
	if _, err := os.Stat(filepath.Join(img, "new")); err == nil {
		t.Error("a write to /new reached the image's files")
	}
	for _, p := range []string{"/tmp/x", "/root/.cache"} {
		f, _, err := s.open(p, unix.O_WRONLY|unix.O_CREAT)
		if err != nil {
			t.Errorf("writing %s: %v", p, err)
			continue
		}
		f.Close()
	}
	if _, err := os.Stat(filepath.Join(img, "tmp", "x")); err == nil {
		t.Error("a write to /tmp reached the image's files")
	}

	// A program the guest starts gets the same tree through the shared root.
	child, err := New(Options{Exe: filepath.Join(img, "usr/local/bin/app"), SharedRoot: s.root})
	if err != nil {
		t.Fatal(err)
	}
	defer child.Close()
	if got, err := read(child, "/usr/local/bin/app"); got != "" || err != nil {
		t.Errorf("a started program reads /usr/local/bin/app, which its parent truncated: %q %v", got, err)
	}
	if got, err := read(child, "/etc/passwd"); !strings.Contains(got, "app:x:1000") || err != nil {
		t.Errorf("a started program reads /etc/passwd: %q %v", got, err)
	}
	if got, err := read(child, "/tmp/x"); err != nil {
		t.Errorf("a started program reads the shared /tmp/x: %q %v", got, err)
	}
}

// open(2) ignores the mode where it creates nothing; musl's fopen gives 0666 with O_RDONLY
// (and O_LARGEFILE), which openat2 alone would refuse.
func TestOpenIgnoresModeWithoutCreate(t *testing.T) {
	img := t.TempDir()
	os.MkdirAll(filepath.Join(img, "etc"), 0o755)
	os.WriteFile(filepath.Join(img, "etc", "os-release"), []byte("NAME=x\n"), 0o644)
	os.WriteFile(filepath.Join(img, "app"), nil, 0o755)
	s, err := New(Options{Exe: filepath.Join(img, "app"), Root: img})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, _, err := s.open("/etc/os-release", unix.O_RDONLY|unix.O_LARGEFILE|0o666<<32)
	if err != nil {
		t.Fatalf("open with a mode and no O_CREAT: %v", err)
	}
	f.Close()
	f, _, err = s.open("/tmp/made", unix.O_RDWR|unix.O_CREAT|0o640<<32)
	if err != nil {
		t.Fatalf("open with O_CREAT: %v", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("created with mode %v, %v; want 0640, what the guest asked for", st.Mode(), err)
	}
}

// The guest applies its own umask; what it asks for is what a new file or directory
// gets, though pith's umask takes more (a guest that set umask 0 asks for 0666).
func TestCreatesPastPithsUmask(t *testing.T) {
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	if got := ProcessUmask(); got != 0o077 {
		t.Fatalf("ProcessUmask() = %#o, want 0o077", got)
	}
	img := t.TempDir()
	os.WriteFile(filepath.Join(img, "app"), nil, 0o755)
	s, err := New(Options{Exe: filepath.Join(img, "app"), Root: img})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mode := func(p string) os.FileMode {
		t.Helper()
		f, _, err := s.open(p, unix.O_PATH|unix.O_NOFOLLOW)
		if err != nil {
			t.Fatalf("open %s: %v", p, err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode()
	}
	for _, c := range []struct {
		flags uint64
		want  os.FileMode
	}{
		{unix.O_WRONLY | unix.O_CREAT | 0o666<<32, 0o666},
		{unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | 0o640<<32, 0o640},
		{unix.O_RDWR | unix.O_CREAT | unix.O_TRUNC | 0o604<<32, 0o604},
		{unix.O_WRONLY | unix.O_CREAT | 0o600<<32, 0o600}, // pith's umask takes nothing: one open
	} {
		f, _, err := s.open("/tmp/new", c.flags)
		if err != nil {
			t.Fatalf("open(O_CREAT, %#o): %v", c.flags>>32, err)
		}
		f.Close()
		if got := mode("/tmp/new"); got != c.want {
			t.Errorf("open(O_CREAT, %#o) made mode %v, want %v", c.flags>>32, got, c.want)
		}
		// A file that is there keeps its mode; with O_EXCL it is refused.
		f, _, err = s.open("/tmp/new", unix.O_WRONLY|unix.O_CREAT|0o777<<32)
		if err != nil {
			t.Fatalf("open(O_CREAT) of a file that is there: %v", err)
		}
		f.Close()
		if got := mode("/tmp/new"); got != c.want {
			t.Errorf("open(O_CREAT) of a file that is there changed its mode to %v, want %v", got, c.want)
		}
		if _, _, err := s.open("/tmp/new", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|0o666<<32); !errors.Is(err, unix.EEXIST) {
			t.Errorf("open(O_CREAT|O_EXCL) of a file that is there: %v, want EEXIST", err)
		}
		if err := s.change("/tmp/new", changeRemove, func(dirfd int, name string) error { return unix.Unlinkat(dirfd, name, 0) }); err != nil {
			t.Fatal(err)
		}
	}
	// O_CREAT of a directory: EISDIR, as open(2) answers.
	if err := s.change("/tmp/adir", changeCreate, func(dirfd int, name string) error { return unix.Mkdirat(dirfd, name, 0o755) }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.open("/tmp/adir", unix.O_RDONLY|unix.O_CREAT|0o666<<32); !errors.Is(err, unix.EISDIR) {
		t.Errorf("open(O_CREAT) of a directory: %v, want EISDIR", err)
	}
	// O_CREAT through a link to a name not there creates the link's target, as on Linux.
	if err := s.change("/tmp/link", changeCreate, func(dirfd int, name string) error { return unix.Symlinkat("target", dirfd, name) }); err != nil {
		t.Fatal(err)
	}
	f, _, err := s.open("/tmp/link", unix.O_WRONLY|unix.O_CREAT|0o666<<32)
	if err != nil {
		t.Fatalf("open(O_CREAT) through a dangling link: %v", err)
	}
	f.Close()
	if got := mode("/tmp/target"); !got.IsRegular() {
		t.Errorf("open(O_CREAT) through a dangling link made %v, want a file", got)
	}

	g := identityMapped(t)
	const pathAt = 0x10000
	for _, c := range []struct {
		path string
		mode uint64
	}{{"/tmp/d777", 0o777}, {"/tmp/d700", 0o700}, {"/tmp/d1775", 0o1775}} {
		copy(g.Bytes()[pathAt:], c.path)
		r := &abi.FileRequest{Op: abi.FileMkdir, Path: pathAt, PathLen: uint64(len(c.path)), Flags: c.mode}
		if e := s.do(g.Virtual(0x1000), r); e != 0 {
			t.Fatalf("mkdir %s: %d", c.path, e)
		}
		if got, want := mode(c.path), os.ModeDir|os.FileMode(c.mode&0o777); got&^os.ModeSticky != want || (c.mode&0o1000 != 0) != (got&os.ModeSticky != 0) {
			t.Errorf("mkdir(%#o) made %v", c.mode, got)
		}
	}
}
