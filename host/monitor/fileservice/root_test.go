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
	if st, err := f.Stat(); err != nil || st.Mode().Perm()&^0o022 != 0o640&^0o022 {
		t.Errorf("created with mode %v, %v; want 0640 less the umask", st.Mode(), err)
	}
}
