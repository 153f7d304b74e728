package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// testImage builds an image whose program is the bytes prog.
func testImage(t *testing.T, prog string, adds ...Add) v1.Image {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app")
	if err := os.WriteFile(p, []byte(prog), 0o755); err != nil {
		t.Fatal(err)
	}
	img, err := Build(BuildOptions{Program: p, Name: "app", Adds: adds, Env: []string{"A=1"}, Workdir: "/srv",
		Created: time.Unix(1e9, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func openTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t *testing.T, s *Store, img v1.Image, names ...string) v1.Hash {
	t.Helper()
	var refs []string
	for _, n := range names {
		tag, err := ParseName(n)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, tag.Name())
	}
	if err := s.put(img, refs, nil); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d
}

// names is the store's list as "name=digest-prefix" strings.
func names(t *testing.T, s *Store) []string {
	t.Helper()
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list {
		out = append(out, Familiar(e.Name)+"="+e.Digest.Hex[:12])
	}
	return out
}

// blobs is the set of blob files in the store.
func blobs(t *testing.T, s *Store) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(s.blobDir())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range entries {
		out[e.Name()] = true
	}
	return out
}

func TestTagRemovePrune(t *testing.T) {
	s := openTestStore(t)
	a := put(t, s, testImage(t, "program a"), "a")
	b := put(t, s, testImage(t, "program b"), "b:1")
	if err := s.Tag("a", "registry.example/team/a:2"); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("[a:latest=%s b:1=%s registry.example/team/a:2=%s]", a.Hex[:12], b.Hex[:12], a.Hex[:12])
	if got := fmt.Sprint(names(t, s)); got != want {
		t.Fatalf("after tag: %s, want %s", got, want)
	}
	// By ID, an image with two names needs -f.
	if _, err := s.Remove([]string{a.Hex[:12]}, false); err == nil || !strings.Contains(err.Error(), "with -f") {
		t.Fatalf("rmi of an ID with two names: %v, want a refusal naming -f", err)
	}
	lines, err := s.Remove([]string{"b:1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(lines, "|"); got != "Untagged: b:1|Deleted: "+b.String() {
		t.Fatalf("rmi b:1 said %q", got)
	}
	// The blobs only b reached are gone; a's are all there.
	img, _, err := s.Resolve("a")
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(img); err != nil {
		t.Fatalf("a after removing b: %v", err)
	}
	bImg := blobs(t, s)
	if bImg[b.Hex] {
		t.Fatal("b's manifest is still stored after rmi")
	}
	if _, _, err := s.Resolve("b:1"); err == nil {
		t.Fatal("b:1 still resolves")
	}
	if _, err := s.Remove([]string{a.Hex[:12]}, true); err != nil {
		t.Fatal(err)
	}
	if got := names(t, s); len(got) != 0 {
		t.Fatalf("after rmi -f: %v", got)
	}
	if got := blobs(t, s); len(got) != 0 {
		t.Fatalf("blobs left after every image was removed: %v", got)
	}
}

func TestPruneRemovesWhatNoNameReaches(t *testing.T) {
	s := openTestStore(t)
	put(t, s, testImage(t, "kept"), "kept")
	// A pull killed after writing a layer: a whole blob no name reaches, and a half one in tmp/.
	st, err := s.newStage()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.writeImage(testImage(t, "orphan"), nil); err == nil {
		err = st.commit()
	}
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(s.dir, "tmp", "blob-123"), []byte("half"), 0o644)
	os.MkdirAll(filepath.Join(s.dir, "rootfs", strings.Repeat("0", 64)), 0o755)
	before := len(blobs(t, s))
	n, freed, err := s.Prune()
	if err != nil {
		t.Fatal(err)
	}
	// The orphan's program layer, config and manifest; its base layer is kept's too.
	if n != 3 || freed == 0 || len(blobs(t, s)) != before-3 {
		t.Fatalf("prune deleted %d blobs (%d bytes) of %d, want 3", n, freed, before)
	}
	for _, d := range []string{"tmp", "rootfs"} {
		if e, _ := os.ReadDir(filepath.Join(s.dir, d)); len(e) != 0 {
			t.Fatalf("prune left %s/%s", d, e[0].Name())
		}
	}
	img, _, err := s.Resolve("kept")
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(img); err != nil {
		t.Fatalf("kept after prune: %v", err)
	}
}

func TestRebuildReusesBaseLayer(t *testing.T) {
	s := openTestStore(t)
	one, two := testImage(t, "version 1"), testImage(t, "version 2")
	l1, _ := one.Layers()
	l2, _ := two.Layers()
	d1, _ := l1[0].Digest()
	d2, _ := l2[0].Digest()
	if d1 != d2 {
		t.Fatalf("base layer of a rebuild: %s, then %s; want the same blob", d1, d2)
	}
	p1, _ := l1[1].Digest()
	p2, _ := l2[1].Digest()
	if p1 == p2 {
		t.Fatal("the program layer did not change with the program")
	}
	put(t, s, one, "app")
	before := blobs(t, s)
	var reused []bool
	if err := s.Put(two, nil, func(i, n int, d v1.Hash, done, size int64, r bool) {
		if done == size {
			reused = append(reused, r)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(reused) != "[true false]" {
		t.Fatalf("layers reused on rebuild: %v, want [true false]", reused)
	}
	// New: the program layer, config and manifest.
	if got := len(blobs(t, s)) - len(before); got != 3 {
		t.Fatalf("rebuild stored %d new blobs, want 3", got)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	s := openTestStore(t)
	a := put(t, s, testImage(t, "a"), "a", "registry.example:5000/x/a:7")
	b := put(t, s, testImage(t, "b"), "b")
	file := filepath.Join(t.TempDir(), "images.tar")
	if err := s.Save([]string{"a", "registry.example:5000/x/a:7", "b"}, file); err != nil {
		t.Fatal(err)
	}
	s2 := openTestStore(t)
	loaded, err := s2.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(loaded, " "); got != "a:latest registry.example:5000/x/a:7 b:latest" {
		t.Fatalf("loaded %q", got)
	}
	want := fmt.Sprintf("[a:latest=%s b:latest=%s registry.example:5000/x/a:7=%s]", a.Hex[:12], b.Hex[:12], a.Hex[:12])
	if got := fmt.Sprint(names(t, s2)); got != want {
		t.Fatalf("after load: %s, want %s (digests kept)", got, want)
	}
	if fmt.Sprint(blobs(t, s)) != fmt.Sprint(blobs(t, s2)) {
		t.Fatal("the loaded store's blobs differ from the saved one's")
	}
}

func TestLoadOfDamagedArchiveChangesNothing(t *testing.T) {
	s := openTestStore(t)
	put(t, s, testImage(t, "a"), "a")
	file := filepath.Join(t.TempDir(), "images.tar")
	if err := s.Save([]string{"a"}, file); err != nil {
		t.Fatal(err)
	}
	// The same archive with one layer's bytes changed (same length).
	b, _ := os.ReadFile(file)
	layers, _ := testImage(t, "a").Layers()
	d, _ := layers[1].Digest()
	i := bytes.LastIndex(b, []byte("blobs/sha256/"+d.Hex)) // its header, after manifest.json
	if i < 0 {
		t.Fatal("layer not in the archive")
	}
	b[i+512+20] ^= 0xff // inside the blob's data, past its 512-byte header
	os.WriteFile(file, b, 0o644)

	s2 := openTestStore(t)
	put(t, s2, testImage(t, "other"), "a") // a different image under the same name
	before, beforeBlobs := names(t, s2), blobs(t, s2)
	if _, err := s2.Load(file); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("load of a damaged archive: %v, want a digest mismatch", err)
	}
	if fmt.Sprint(names(t, s2)) != fmt.Sprint(before) || fmt.Sprint(blobs(t, s2)) != fmt.Sprint(beforeBlobs) {
		t.Fatal("a failed load changed the store")
	}
	if e, _ := os.ReadDir(filepath.Join(s2.dir, "tmp")); len(e) != 0 {
		t.Fatalf("a failed load left tmp/%s", e[0].Name())
	}
}

func TestCorruptBlobIsReported(t *testing.T) {
	s := openTestStore(t)
	img := testImage(t, "program")
	put(t, s, img, "app")
	layers, _ := img.Layers()
	d, _ := layers[1].Digest()
	p := s.blobPath(d)
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 1
	os.WriteFile(p, b, 0o644)

	stored, _, err := s.Resolve("app")
	if err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{
		"verify": Verify(stored),
		"save":   s.Save([]string{"app"}, filepath.Join(t.TempDir(), "x.tar")),
		"unpack": func() error { _, err := s.Rootfs(stored); return err }(),
	} {
		if err == nil || !strings.Contains(err.Error(), "is corrupt") || !strings.Contains(err.Error(), "rm "+p) {
			t.Errorf("%s of an image with a corrupt layer: %v, want a line naming the blob and the fix", what, err)
		}
	}
	if e, _ := os.ReadDir(filepath.Join(s.dir, "rootfs")); len(e) != 0 {
		t.Fatal("a failed unpack left a tree in rootfs/")
	}
}

// Two writers racing on one name, with a prune running meanwhile: each write is whole,
// the name ends on one of the two images, and prune never takes a blob a writer has
// stored but not yet named.
func TestConcurrentWriters(t *testing.T) {
	s := openTestStore(t)
	imgs := []v1.Image{testImage(t, "writer 0"), testImage(t, "writer 1")}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	stop := make(chan struct{})
	for w := range imgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				// Each writer opens the store itself, as a second pith process would.
				st, err := Open(s.dir)
				if err == nil {
					err = st.put(imgs[w], []string{"index.docker.io/library/race:latest", fmt.Sprintf("index.docker.io/library/w%d:latest", w)}, nil)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	pruned := make(chan struct{})
	go func() {
		defer close(pruned)
		for {
			select {
			case <-stop:
				return
			default:
			}
			st, _ := Open(s.dir)
			if _, _, err := st.Prune(); err != nil {
				errs <- err
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-pruned
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := names(t, s)
	d0, _ := imgs[0].Digest()
	d1, _ := imgs[1].Digest()
	if len(got) != 3 || (got[0] != "race:latest="+d0.Hex[:12] && got[0] != "race:latest="+d1.Hex[:12]) {
		t.Fatalf("after the race: %v", got)
	}
	for _, n := range []string{"race", "w0", "w1"} {
		img, _, err := s.Resolve(n)
		if err == nil {
			err = Verify(img)
		}
		if err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

// layerOf is a layer holding the given tar entries; a body is a regular file's.
func layerOf(t *testing.T, entries ...tar.Header) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		body := h.Linkname
		if h.Typeflag == tar.TypeReg {
			h.Linkname, h.Size = "", int64(len(body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(body))
		}
	}
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func reg(name, body string) tar.Header {
	return tar.Header{Name: name, Typeflag: tar.TypeReg, Linkname: body}
}
func link(name, target string) tar.Header {
	return tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target}
}

func TestUnpackStaysInside(t *testing.T) {
	outside := t.TempDir()
	for _, tc := range []struct {
		name    string
		entries []tar.Header
		refused bool
	}{
		{"dotdot", []tar.Header{reg("../escaped", "x")}, true},
		{"dotdot inside", []tar.Header{reg("a/../../escaped", "x")}, true},
		{"absolute", []tar.Header{reg("/abs/escaped", "x")}, false},
		{"absolute link", []tar.Header{link("l", outside), reg("l/escaped", "x")}, false},
		{"climbing link", []tar.Header{link("l", "../../../../../../.."+outside), reg("l/escaped", "x")}, false},
		{"link to a link", []tar.Header{link("a", "/b"), link("b", outside), reg("a/escaped", "x")}, false},
		{"hard link out", []tar.Header{{Name: "h", Typeflag: tar.TypeLink, Linkname: "../../../etc/passwd"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			img, err := mutate.AppendLayers(empty.Image, layerOf(t, tc.entries...))
			if err != nil {
				t.Fatal(err)
			}
			err = Unpack(img, root)
			if tc.refused != (err != nil) {
				t.Fatalf("unpack: %v, want refused %v", err, tc.refused)
			}
			if e, _ := os.ReadDir(outside); len(e) != 0 {
				t.Fatalf("%s written outside the image's tree", e[0].Name())
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(root), "escaped")); err == nil {
				t.Fatal("written beside the image's tree")
			}
			if !tc.refused {
				found := false
				filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
					found = found || (d != nil && d.Name() == "escaped")
					return nil
				})
				if !found {
					t.Fatal("the file is not in the tree either")
				}
			}
		})
	}
}

func TestUnpackWhiteouts(t *testing.T) {
	img, err := mutate.AppendLayers(empty.Image,
		layerOf(t, reg("a/b", "1"), reg("a/c", "1"), reg("d/old", "1"), reg("d/sub/deep", "1"), reg("e", "1")),
		layerOf(t, reg("a/.wh.b", ""), reg("d/new", "2"), reg("d/.wh..wh..opq", ""), reg(".wh.e", "")),
	)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := Unpack(img, root); err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			got = append(got, rel)
		}
		return nil
	})
	if fmt.Sprint(got) != "[a/c d/new]" {
		t.Fatalf("after whiteouts: %v, want [a/c d/new]", got)
	}
}

func TestRunSpec(t *testing.T) {
	s := openTestStore(t)
	img := testImage(t, "program")
	cf, _ := img.ConfigFile()
	cf.Config.Cmd = []string{"serve", "--port=80"}
	img, _ = mutate.ConfigFile(img, cf)
	spec, err := s.RunSpec(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(spec.Args) != "[/usr/local/bin/app serve --port=80]" || spec.Workdir != "/srv" ||
		spec.ExePath != "/usr/local/bin/app" || spec.Exe != filepath.Join(spec.Root, "usr/local/bin/app") {
		t.Fatalf("spec %+v", spec)
	}
	if b, _ := os.ReadFile(spec.Exe); string(b) != "program" {
		t.Fatalf("the unpacked program holds %q", b)
	}
	if fi, err := os.Stat(filepath.Join(spec.Root, "srv")); err != nil || !fi.IsDir() {
		t.Fatalf("the working directory is not in the image: %v", err)
	}
	if spec, err = s.RunSpec(img, []string{"version"}); err != nil || fmt.Sprint(spec.Args) != "[/usr/local/bin/app version]" {
		t.Fatalf("with arguments: %v %v, want them in place of the cmd", spec, err)
	}
	// No entrypoint: the cmd's program, found on the image's PATH.
	cf.Config.Entrypoint, cf.Config.Cmd = nil, []string{"app", "x"}
	img, _ = mutate.ConfigFile(img, cf)
	if spec, err = s.RunSpec(img, nil); err != nil || spec.ExePath != "/usr/local/bin/app" {
		t.Fatalf("a program on PATH: %+v %v", spec, err)
	}
	cf.Config.Cmd = []string{"/bin/sh"}
	img, _ = mutate.ConfigFile(img, cf)
	if _, err = s.RunSpec(img, nil); err == nil || !strings.Contains(err.Error(), "/bin/sh is not in the image") {
		t.Fatalf("a missing program: %v", err)
	}
	cf.Config.Cmd = nil
	img, _ = mutate.ConfigFile(img, cf)
	if _, err = s.RunSpec(img, nil); err == nil || !strings.Contains(err.Error(), "no entrypoint or cmd") {
		t.Fatalf("nothing to run: %v", err)
	}
	cf.Architecture = "arm64"
	img, _ = mutate.ConfigFile(img, cf)
	if _, err = s.RunSpec(img, nil); err == nil || !strings.Contains(err.Error(), "linux/arm64") {
		t.Fatalf("an arm64 image: %v", err)
	}
}

// The base layer holds the CA bundle and time zones only for a program that uses them.
func TestBuildBaseLayer(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	os.WriteFile(ca, []byte("CERTS"), 0o644)
	zones := filepath.Join(dir, "zoneinfo")
	os.MkdirAll(filepath.Join(zones, "Europe"), 0o755)
	os.WriteFile(filepath.Join(zones, "Europe", "Paris"), []byte("TZif"), 0o644)
	for _, tc := range []struct{ prog, want string }{
		{"plain", "[etc/ etc/group etc/hosts etc/nsswitch.conf etc/passwd root/ tmp/]"},
		{"uses crypto/x509.(*CertPool) and /usr/share/zoneinfo/", "[etc/ etc/group etc/hosts etc/nsswitch.conf etc/passwd " +
			"etc/ssl/ etc/ssl/certs/ etc/ssl/certs/ca-certificates.crt root/ tmp/ usr/ usr/share/ usr/share/zoneinfo/ " +
			"usr/share/zoneinfo/Europe/ usr/share/zoneinfo/Europe/Paris]"},
	} {
		p := filepath.Join(dir, "app")
		os.WriteFile(p, []byte(tc.prog), 0o755)
		var warned []string
		img, err := Build(BuildOptions{Program: p, Name: "app", CACerts: ca, Zoneinfo: zones,
			Log: func(f string, a ...any) { warned = append(warned, fmt.Sprintf(f, a...)) }})
		if err != nil {
			t.Fatal(err)
		}
		layers, _ := img.Layers()
		rc, _ := layers[0].Uncompressed()
		var got []string
		tr := tar.NewReader(rc)
		for h, err := tr.Next(); err == nil; h, err = tr.Next() {
			if h.Uid != 0 || h.Gid != 0 || h.ModTime.Unix() != 0 {
				t.Errorf("%s: uid %d gid %d mtime %v, want root's and the epoch", h.Name, h.Uid, h.Gid, h.ModTime)
			}
			got = append(got, h.Name)
		}
		if fmt.Sprint(got) != tc.want {
			t.Errorf("base layer for %q:\n%v\nwant\n%v", tc.prog, got, tc.want)
		}
	}
}

// What a command killed midway left in tmp/ goes at the next command's Open; what a
// live command holds stays.
func TestKilledCommandsLeaveNothing(t *testing.T) {
	s := openTestStore(t)
	dead, err := s.newStage()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dead.dir, "partial-1"), []byte("half a layer"), 0o644)
	dead.held.Close() // as kill -9 would: the lock goes, the directory stays
	live, err := s.newStage()
	if err != nil {
		t.Fatal(err)
	}
	defer live.discard()
	old := time.Now().Add(-2 * time.Minute)
	for _, d := range []string{dead.dir, live.dir} {
		os.Chtimes(d, old, old)
	}
	if _, err := Open(s.dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead.dir); err == nil {
		t.Error("a killed command's stage survived the next Open")
	}
	if _, err := os.Stat(live.dir); err != nil {
		t.Errorf("a live command's stage was removed: %v", err)
	}
}

// unpacked stores an image named name and unpacks it, as a run of it would: its digest
// and tree.
func unpacked(t *testing.T, s *Store, name string) (v1.Hash, string) {
	t.Helper()
	d := put(t, s, testImage(t, "program "+name), name)
	img, _, err := s.Resolve(name)
	if err != nil {
		t.Fatal(err)
	}
	root, err := s.Rootfs(img)
	if err != nil {
		t.Fatal(err)
	}
	return d, root
}

// An image a unikernel uses is not deleted under it: rmi refuses, rmi -f removes the name
// only, and neither it nor prune deletes the blobs or the unpacked tree until the
// unikernel is gone.
func TestRemoveImageInUse(t *testing.T) {
	s := openTestStore(t)
	a, root := unpacked(t, s, "a")
	s.Users = map[string]string{a.Hex: "unikernel web (0123456789ab)"}
	for _, ref := range []string{"a", a.Hex[:12]} {
		_, err := s.Remove([]string{ref}, false)
		want := "image " + ref + " is in use by unikernel web (0123456789ab); remove it first or use -f"
		if err == nil || err.Error() != want {
			t.Fatalf("rmi %s: %v, want %q", ref, err, want)
		}
	}
	// Another name may go: the image keeps one.
	if err := s.Tag("a", "a:2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove([]string{"a:2"}, false); err != nil {
		t.Fatalf("rmi of one of two names: %v", err)
	}
	lines, err := s.Remove([]string{"a"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(lines, "|"); got != "Untagged: a:latest" {
		t.Errorf("rmi -f a said %q, want the name removed and nothing deleted", got)
	}
	if _, _, err := s.Prune(); err != nil {
		t.Fatal(err)
	}
	kept, err := s.Image(a)
	if err == nil {
		err = Verify(kept)
	}
	if err != nil {
		t.Fatalf("the image in use after rmi -f and prune: %v", err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("its unpacked tree after rmi -f and prune: %v", err)
	}
	// Once no unikernel uses it, prune deletes it.
	s.Users = nil
	if _, _, err := s.Prune(); err != nil {
		t.Fatal(err)
	}
	if got := blobs(t, s); len(got) != 0 {
		t.Errorf("blobs left once the unikernel was removed: %v", got)
	}
	if _, err := os.Stat(root); err == nil {
		t.Error("the unpacked tree is left once the unikernel was removed")
	}
}

// An image a live process runs in the foreground (Hold) is kept as a detached
// unikernel's is: rmi refuses, rmi -f leaves its files, prune keeps it; once the holder
// is gone (its lock dropped), its record is swept and prune deletes the image.
func TestHeldImageIsKept(t *testing.T) {
	s := openTestStore(t)
	a, root := unpacked(t, s, "a")
	hold, err := s.Hold(a, "pith run (pid 42)")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Remove([]string{"a"}, false)
	if want := "image a is in use by pith run (pid 42); let it end first or use -f"; err == nil || err.Error() != want {
		t.Fatalf("rmi of a held image: %v, want %q", err, want)
	}
	if _, err := s.Remove([]string{"a"}, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Prune(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("the held image's tree after rmi -f and prune: %v", err)
	}
	hold.Close() // as the holder's end, kill -9 included, drops its lock
	if _, _, err := s.Prune(); err != nil {
		t.Fatal(err)
	}
	if got := blobs(t, s); len(got) != 0 {
		t.Errorf("blobs left once the holder ended: %v", got)
	}
	if left, _ := os.ReadDir(s.path("running")); len(left) != 0 {
		t.Errorf("records left in running/: %v", left)
	}
}
