package fileservice

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// layerImage makes an image's unpacked files for the writable layer's tests.
func layerImage(t *testing.T) string {
	t.Helper()
	img := t.TempDir()
	for name, content := range map[string]string{
		"usr/local/bin/app":  "the program",
		"usr/share/doc/note": "image note",
		"etc/passwd":         "app:x:1000:1000::/home/app:/sbin/nologin\n",
		"etc/motd":           "welcome",
		"etc/old":            "old contents",
		"data/a":             "a",
		"data/sub/b":         "b",
	} {
		p := filepath.Join(img, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(img, "usr/share"), 0o751)
	os.Chmod(filepath.Join(img, "usr/share/doc/note"), 0o640)
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	os.Chtimes(filepath.Join(img, "usr/share/doc/note"), old, old)
	os.Symlink("usr/local/bin", filepath.Join(img, "bin")) // as /bin -> usr/bin in distributions
	t.Chdir(t.TempDir())
	return img
}

func layerService(t *testing.T, img, layer string) *Service {
	t.Helper()
	s, err := New(Options{Exe: filepath.Join(img, "usr/local/bin/app"), Root: img, Home: "/root", Hostname: "box", Layer: layer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func readGuest(s *Service, p string) (string, error) {
	f, _, err := s.open(p, unix.O_RDONLY)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	return string(b), err
}

func writeGuest(s *Service, p, content string) error {
	f, _, err := s.open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|0o644<<32)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(content)
	return err
}

// listGuest is the names (no . or ..) the guest reads from directory p, through the
// service's readdir, in a buffer small enough to take several calls.
func listGuest(t *testing.T, s *Service, p string) []string {
	t.Helper()
	f, _, err := s.open(p, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		t.Fatalf("opening %s: %v", p, err)
	}
	defer f.Close()
	m := s.openedDir
	s.openedDir = nil
	var names []string
	buf := make([]byte, 64)
	for {
		var n int
		if m != nil {
			n, err = s.readMerged(m, buf)
		} else {
			n, err = unix.Getdents(int(f.Fd()), buf)
		}
		if err != nil {
			t.Fatalf("listing %s: %v", p, err)
		}
		if n == 0 {
			break
		}
		for b := buf[:n]; len(b) > 0; {
			reclen := int(binary.LittleEndian.Uint16(b[16:18]))
			if name := direntName(b[:reclen]); name != "." && name != ".." {
				names = append(names, name)
			}
			b = b[reclen:]
		}
	}
	slices.Sort(names)
	return names
}

// A write to an image's file copies it up, with the directories above it, into the
// guest's own layer: the image never changes, and the copy keeps mode and times.
func TestLayerCopyUp(t *testing.T) {
	img := layerImage(t)
	layer := filepath.Join(t.TempDir(), "layer")
	s := layerService(t, img, layer)
	if got, err := readGuest(s, "/usr/share/doc/note"); got != "image note" || err != nil {
		t.Fatalf("before any write: %q %v", got, err)
	}
	if _, err := os.Stat(layer); err == nil {
		t.Error("the layer was made before the guest wrote anything")
	}
	f, _, err := s.open("/usr/share/doc/note", unix.O_RDWR|unix.O_APPEND)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(", changed")
	f.Close()
	if got, _ := readGuest(s, "/usr/share/doc/note"); got != "image note, changed" {
		t.Errorf("the guest reads back %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(img, "usr/share/doc/note")); string(b) != "image note" {
		t.Errorf("the image's file changed: %q", b)
	}
	up := filepath.Join(layer, "upper")
	fi, err := os.Stat(filepath.Join(up, "usr/share/doc/note"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("copied-up mode %v, want the image's -rw-r-----", fi.Mode())
	}
	if dir, _ := os.Stat(filepath.Join(up, "usr/share")); dir == nil || dir.Mode().Perm() != 0o751 {
		t.Errorf("copied-up /usr/share: %v, want the image's mode drwxr-x--x", dir)
	}
	// A chmod and a utimes copy up too; the copy's times were the image's until then.
	var st unix.Stat_t
	unix.Stat(filepath.Join(img, "etc/motd"), &st)
	if err := s.chmod("/etc/motd", 0o600); err != nil {
		t.Fatal(err)
	}
	var cp unix.Stat_t
	unix.Stat(filepath.Join(up, "etc/motd"), &cp)
	if cp.Mode&0o777 != 0o600 || cp.Mtim != st.Mtim {
		t.Errorf("chmod's copy: mode %o mtime %v, want 600 and the image's %v", cp.Mode&0o777, cp.Mtim, st.Mtim)
	}
	if unix.Stat(filepath.Join(img, "etc/motd"), &st); st.Mode&0o777 != 0o644 {
		t.Errorf("chmod reached the image: %o", st.Mode&0o777)
	}
	// A new directory under /usr, and a write through the image's relative link /bin.
	if err := s.change("/usr/newdir", changeCreate, func(dirfd int, name string) error { return unix.Mkdirat(dirfd, name, 0o755) }); err != nil {
		t.Fatal(err)
	}
	if err := writeGuest(s, "/usr/newdir/f", "new"); err != nil {
		t.Fatal(err)
	}
	if err := writeGuest(s, "/bin/app", "replaced"); err != nil {
		t.Fatal(err)
	}
	if got, _ := readGuest(s, "/usr/local/bin/app"); got != "replaced" {
		t.Errorf("/usr/local/bin/app after a write to /bin/app: %q", got)
	}
	// And the image's link, read after its target was written, leads to the guest's copy.
	if err := writeGuest(s, "/usr/local/bin/app", "v2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := readGuest(s, "/bin/app"); got != "v2" {
		t.Errorf("/bin/app after a write to /usr/local/bin/app: %q", got)
	}
	f, _, err = s.open("/bin/app", unix.O_PATH)
	if err != nil {
		t.Fatal(err)
	}
	var lst unix.Stat_t
	unix.Fstat(int(f.Fd()), &lst)
	f.Close()
	if lst.Mode&unix.S_IFMT != unix.S_IFREG || lst.Size != 2 {
		t.Errorf("stat /bin/app: mode %o size %d, want the guest's 2-byte file", lst.Mode, lst.Size)
	}
	if _, err := os.Stat(filepath.Join(img, "usr/newdir")); err == nil {
		t.Error("mkdir reached the image")
	}
	if got := listGuest(t, s, "/usr"); !slices.Equal(got, []string{"local", "newdir", "share"}) {
		t.Errorf("ls /usr: %v", got)
	}
}

// Deleting an image's file or directory leaves a mark that keeps it gone; a directory
// made again over a deleted one shows none of the image's files (it is opaque).
func TestLayerWhiteouts(t *testing.T) {
	img := layerImage(t)
	s := layerService(t, img, "")
	if err := s.change("/etc/motd", changeRemove, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := readGuest(s, "/etc/motd"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("/etc/motd after unlink: %v, want ENOENT", err)
	}
	if _, err := os.Stat(filepath.Join(img, "etc/motd")); err != nil {
		t.Errorf("unlink reached the image: %v", err)
	}
	if got := listGuest(t, s, "/etc"); slices.Contains(got, "motd") {
		t.Errorf("ls /etc after unlink shows motd: %v", got)
	}
	if err := s.change("/etc/motd", changeRemove, nil); !errors.Is(err, unix.ENOENT) {
		t.Errorf("a second unlink: %v, want ENOENT", err)
	}
	if _, _, err := s.open("/etc/passwd/x", unix.O_PATH); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("stat /etc/passwd/x: %v, want ENOTDIR", err)
	}
	if _, _, err := s.open("/usr/share/doc/none", unix.O_PATH); !errors.Is(err, unix.ENOENT) {
		t.Errorf("stat /usr/share/doc/none: %v, want ENOENT", err)
	}
	if err := writeGuest(s, "/etc/motd", "again"); err != nil {
		t.Fatal(err)
	}
	if got, _ := readGuest(s, "/etc/motd"); got != "again" {
		t.Errorf("/etc/motd made again: %q", got)
	}

	if err := s.change("/data", changeRemoveDir, nil); !errors.Is(err, unix.ENOTEMPTY) {
		t.Errorf("rmdir /data: %v, want ENOTEMPTY", err)
	}
	if err := s.change("/data", changeRemove, nil); !errors.Is(err, unix.EISDIR) {
		t.Errorf("unlink /data: %v, want EISDIR", err)
	}
	if err := s.change("/data/a", changeRemoveDir, nil); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("rmdir /data/a: %v, want ENOTDIR", err)
	}
	for _, step := range []struct {
		p    string
		kind int
	}{{"/data/a", changeRemove}, {"/data/sub/b", changeRemove}, {"/data/sub", changeRemoveDir}, {"/data", changeRemoveDir}} {
		if err := s.change(step.p, step.kind, nil); err != nil {
			t.Fatalf("removing %s: %v", step.p, err)
		}
	}
	if got := listGuest(t, s, "/"); slices.Contains(got, "data") {
		t.Errorf("ls / after rmdir /data: %v", got)
	}
	if err := writeGuest(s, "/data/sub/new", "x"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("a write beneath the deleted /data: %v, want ENOENT", err)
	}
	if err := s.change("/data", changeCreate, func(dirfd int, name string) error { return unix.Mkdirat(dirfd, name, 0o755) }); err != nil {
		t.Fatal(err)
	}
	if got := listGuest(t, s, "/data"); len(got) != 0 {
		t.Errorf("ls of a /data made again: %v, want nothing of the image's", got)
	}
	if _, err := readGuest(s, "/data/sub/b"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("/data/sub/b under a /data made again: %v, want ENOENT", err)
	}
	if got := listGuest(t, s, "/data"); len(got) != 0 {
		t.Errorf("ls /data: %v", got)
	}
}

// A rename copies the image's file up and leaves its old name gone; a directory of the
// image cannot be renamed (EXDEV, as overlayfs answers: mv then copies).
func TestLayerRename(t *testing.T) {
	img := layerImage(t)
	s := layerService(t, img, "")
	if err := s.rename("/etc/old", "/etc/new"); err != nil {
		t.Fatal(err)
	}
	if got, _ := readGuest(s, "/etc/new"); got != "old contents" {
		t.Errorf("/etc/new: %q", got)
	}
	if _, err := readGuest(s, "/etc/old"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("/etc/old after rename: %v, want ENOENT", err)
	}
	// Over an image file, from the private /tmp, and into a directory only the image has.
	if err := writeGuest(s, "/tmp/x", "from tmp"); err != nil {
		t.Fatal(err)
	}
	if err := s.rename("/tmp/x", "/usr/share/doc/note"); err != nil {
		t.Fatal(err)
	}
	if got, _ := readGuest(s, "/usr/share/doc/note"); got != "from tmp" {
		t.Errorf("/usr/share/doc/note: %q", got)
	}
	if err := s.rename("/etc/new", "/tmp/back"); err != nil {
		t.Fatal(err)
	}
	if got, _ := readGuest(s, "/tmp/back"); got != "old contents" {
		t.Errorf("/tmp/back: %q", got)
	}
	if got := listGuest(t, s, "/etc"); slices.Contains(got, "new") || slices.Contains(got, "old") {
		t.Errorf("ls /etc: %v", got)
	}
	if err := s.rename("/data", "/data2"); !errors.Is(err, unix.EXDEV) {
		t.Errorf("renaming the image's /data: %v, want EXDEV", err)
	}
	for _, f := range []string{"etc/old", "usr/share/doc/note"} {
		if _, err := os.Stat(filepath.Join(img, f)); err != nil {
			t.Errorf("rename changed the image's %s: %v", f, err)
		}
	}
}

// Listings merge the guest's entries over the image's, each name once.
func TestLayerListing(t *testing.T) {
	img := layerImage(t)
	s := layerService(t, img, "")
	if got := listGuest(t, s, "/etc"); !slices.Equal(got, []string{"motd", "old", "passwd"}) {
		t.Errorf("ls /etc before any write: %v", got)
	}
	writeGuest(s, "/etc/motd", "changed")
	writeGuest(s, "/etc/added", "new")
	s.change("/etc/old", changeRemove, nil)
	if got := listGuest(t, s, "/etc"); !slices.Equal(got, []string{"added", "motd", "passwd"}) {
		t.Errorf("ls /etc: %v, want added, motd, passwd", got)
	}
	if got := listGuest(t, s, "/"); !slices.Equal(got, []string{"bin", "data", "etc", "usr"}) {
		t.Errorf("ls /: %v", got)
	}
}

// A link the guest makes in its layer, however it climbs or whatever host path it
// names, leads only where it would inside the guest's /.
func TestLayerLinksStayInside(t *testing.T) {
	img := layerImage(t)
	layer := filepath.Join(t.TempDir(), "layer")
	s := layerService(t, img, layer)
	mk := func(target, p string) {
		t.Helper()
		if err := s.change(p, changeCreate, func(dirfd int, name string) error { return unix.Symlinkat(target, dirfd, name) }); err != nil {
			t.Fatal(err)
		}
	}
	mk("../../../../../../../../etc/passwd", "/usr/share/climb")
	mk("/etc/passwd", "/usr/share/abs")
	mk(filepath.Join(img, "etc/passwd"), "/usr/share/lower-host")
	mk(filepath.Join(layer, "upper/usr/share/climb"), "/usr/share/upper-host")
	for _, p := range []string{"/usr/share/climb", "/usr/share/abs"} {
		if got, err := readGuest(s, p); !strings.Contains(got, "app:x:1000") || err != nil {
			t.Errorf("%s: %q %v, want the image's /etc/passwd", p, got, err)
		}
	}
	for _, p := range []string{"/usr/share/lower-host", "/usr/share/upper-host"} {
		if _, err := readGuest(s, p); !errors.Is(err, unix.ENOENT) {
			t.Errorf("%s, a link to a host path: %v, want ENOENT (no such guest path)", p, err)
		}
	}
	// Writing through a climbing link lands in the layer, not on the host.
	mk("../../../../../../../../etc/pith-layer-test", "/usr/share/out")
	if err := writeGuest(s, "/usr/share/out", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/etc/pith-layer-test"); err == nil {
		t.Fatal("a write through a link in the layer reached the host's /etc")
	}
	if b, err := os.ReadFile(filepath.Join(layer, "upper/etc/pith-layer-test")); string(b) != "x" {
		t.Errorf("the write through the link: %q %v, want it in the layer's etc/", b, err)
	}
	// A link from the private /tmp into the image leads through the layer too.
	mk("/etc", "/tmp/etc")
	if err := s.change("/tmp/etc/motd", changeRemove, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := readGuest(s, "/etc/motd"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("/etc/motd after unlink /tmp/etc/motd: %v, want ENOENT", err)
	}
	if err := writeGuest(s, "/tmp/etc/via-tmp", "t"); err != nil {
		t.Fatal(err)
	}
	if got, _ := readGuest(s, "/etc/via-tmp"); got != "t" {
		t.Errorf("/etc/via-tmp: %q", got)
	}
	if _, err := os.Stat(filepath.Join(img, "etc/motd")); err != nil {
		t.Errorf("the image's /etc/motd: %v", err)
	}
	// A directory through a link, relative or absolute, opens as one (os.listdir).
	mk("sub", "/data/rel")
	mk("/data/sub", "/tmp/abs")
	if err := s.change("/tmp/dir", changeCreate, func(dirfd int, name string) error { return unix.Mkdirat(dirfd, name, 0o755) }); err != nil {
		t.Fatal(err)
	}
	mk("/tmp/dir", "/tmp/abs-tmp")
	for _, p := range []string{"/data/rel", "/tmp/abs", "/tmp/abs-tmp", "/bin"} {
		f, _, err := s.open(p, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			t.Errorf("open(%s, O_DIRECTORY), a link to a directory: %v", p, err)
			continue
		}
		f.Close()
	}
	if _, _, err := s.open("/etc/passwd", unix.O_RDONLY|unix.O_DIRECTORY); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("open(/etc/passwd, O_DIRECTORY): %v, want ENOTDIR", err)
	}
	// A link of the image's copied up keeps pointing where it did.
	if err := s.chmod("/bin", 0o755); err == nil {
		if got, _ := readGuest(s, "/bin/app"); got != "the program" {
			t.Errorf("/bin/app through a copied-up /bin: %q", got)
		}
	}
}

// Two guests of one image each see their own writes only; a layer kept on the host (a
// detached unikernel's) is there again for the next start.
func TestLayerPrivateAndKept(t *testing.T) {
	img := layerImage(t)
	layer := filepath.Join(t.TempDir(), "layer")
	a := layerService(t, img, layer)
	b := layerService(t, img, "")
	if err := writeGuest(a, "/etc/motd", "a's"); err != nil {
		t.Fatal(err)
	}
	if err := a.change("/etc/old", changeRemove, nil); err != nil {
		t.Fatal(err)
	}
	if err := writeGuest(b, "/etc/motd", "b's"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		s          *Service
		motd       string
		oldVisible bool
	}{{a, "a's", false}, {b, "b's", true}} {
		if got, _ := readGuest(tc.s, "/etc/motd"); got != tc.motd {
			t.Errorf("/etc/motd: %q, want %q", got, tc.motd)
		}
		if _, err := readGuest(tc.s, "/etc/old"); (err == nil) != tc.oldVisible {
			t.Errorf("/etc/old: %v, visible want %v", err, tc.oldVisible)
		}
	}
	a.Close()
	again := layerService(t, img, layer)
	if got, _ := readGuest(again, "/etc/motd"); got != "a's" {
		t.Errorf("/etc/motd in the next start: %q", got)
	}
	if _, err := readGuest(again, "/etc/old"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("/etc/old in the next start: %v, want ENOENT", err)
	}
	// A foreground guest's layer goes with it.
	root := b.root
	b.Close()
	if _, err := os.Stat(filepath.Join(root, "layer")); err == nil {
		t.Error("a foreground guest's layer outlived it")
	}
}

// BenchmarkLayerOpen measures the open of an image file four directories down, before
// the guest has written (the image alone) and after (through the layer: links
// followed in the file service).
func BenchmarkLayerOpen(b *testing.B) {
	img := b.TempDir()
	p := filepath.Join(img, "usr/share/doc/pkg/README")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("x"), 0o644)
	os.WriteFile(filepath.Join(img, "app"), nil, 0o755)
	for _, written := range []bool{false, true} {
		name := "image-only"
		if written {
			name = "with-layer"
		}
		b.Run(name, func(b *testing.B) {
			s, err := New(Options{Exe: filepath.Join(img, "app"), Root: img})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if written {
				if err := writeGuest(s, "/x", "x"); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				f, _, err := s.open("/usr/share/doc/pkg/README", unix.O_RDONLY)
				if err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
}

// A hard link works in the guest's private directories; beneath the image's files it
// answers EXDEV, and the image is untouched.
func TestLayerLink(t *testing.T) {
	img := layerImage(t)
	s := layerService(t, img, "")
	if err := writeGuest(s, "/tmp/a", "linked"); err != nil {
		t.Fatal(err)
	}
	if err := s.link("/tmp/a", "/tmp/b"); err != nil {
		t.Fatal(err)
	}
	if got, _ := readGuest(s, "/tmp/b"); got != "linked" {
		t.Errorf("/tmp/b: %q", got)
	}
	if err := s.link("/tmp/a", "/tmp/b"); !errors.Is(err, unix.EEXIST) {
		t.Errorf("a link over an existing name: %v, want EEXIST", err)
	}
	for _, tc := range [][2]string{{"/etc/old", "/tmp/c"}, {"/tmp/a", "/etc/c"}} {
		if err := s.link(tc[0], tc[1]); !errors.Is(err, unix.EXDEV) {
			t.Errorf("link %s %s: %v, want EXDEV", tc[0], tc[1], err)
		}
	}
	if _, err := os.Stat(filepath.Join(img, "etc", "c")); err == nil {
		t.Error("a link reached the image")
	}
}

// A detached unikernel's layer (Options.Layer) holds its image's /tmp, as a container's
// does: what it writes there is kept across stop and start, and the programs it starts
// see it. A foreground run's /tmp, and that of an image with none, stay private.
func TestLayerHoldsTmpOfADetachedUnikernel(t *testing.T) {
	img := layerImage(t)
	if err := os.Mkdir(filepath.Join(img, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	layer := filepath.Join(t.TempDir(), "layer")
	first := layerService(t, img, layer)
	if err := writeGuest(first, "/tmp/kept", "across runs"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(layer, "upper/tmp/kept")); string(b) != "across runs" {
		t.Fatalf("/tmp/kept in the layer: %q %v", b, err)
	}
	if _, err := first.private(); err != nil {
		t.Fatal(err)
	}
	started, err := New(Options{Exe: filepath.Join(img, "usr/local/bin/app"), SharedRoot: first.root, Hostname: "box"})
	if err != nil {
		t.Fatal(err)
	}
	defer started.Close()
	if got, err := readGuest(started, "/tmp/kept"); got != "across runs" {
		t.Errorf("a started program's /tmp/kept: %q %v", got, err)
	}
	first.Close()
	again := layerService(t, img, layer)
	if got, err := readGuest(again, "/tmp/kept"); got != "across runs" {
		t.Errorf("/tmp/kept after a restart: %q %v", got, err)
	}

	foreground := layerService(t, img, "")
	if err := writeGuest(foreground, "/tmp/own", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := readGuest(foreground, "/tmp/kept"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("a foreground run's /tmp/kept: %v, want ENOENT", err)
	}
	if _, err := os.Stat(filepath.Join(foreground.root, "tmp/own")); err != nil {
		t.Errorf("a foreground run's /tmp is not its private one: %v", err)
	}
	noTmp := layerImage(t)
	bare := layerService(t, noTmp, filepath.Join(t.TempDir(), "layer"))
	if err := writeGuest(bare, "/tmp/x", "x"); err != nil {
		t.Fatalf("/tmp of an image with none: %v", err)
	}
	if _, err := os.Stat(filepath.Join(bare.root, "tmp/x")); err != nil {
		t.Errorf("/tmp of an image with none is not private: %v", err)
	}
}
