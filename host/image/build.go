package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// An image pith builds has three layers, so that a rebuild of only the program stores
// one new layer: the base (the /etc files a Go program reads, CA certificates and time
// zones where it uses them), the program, then the files --add names. Every layer is
// deterministic: entries sorted, mtime the Unix epoch, owner root, no host names.

// BuildOptions say what goes into an image.
type BuildOptions struct {
	Program    string            // the static executable, on the host
	Name       string            // its file name in /usr/local/bin
	Adds       []Add             // further files (--add)
	Entrypoint []string          // default: the program
	Cmd        []string          // the entrypoint's default arguments
	Env        []string          // KEY=VALUE, after PATH
	Workdir    string            // default: /
	Expose     []string          // PORT[/tcp|/udp]
	Labels     map[string]string // --label
	Created    time.Time         // the config's creation time
	// CACerts and Zoneinfo are where the host keeps them, for programs that need them.
	CACerts, Zoneinfo string
	Log               func(format string, args ...any) // progress, a line each
}

// Add is a host file or directory copied into the image at Dst.
type Add struct{ Src, Dst string }

// ProgramPath is where an image pith builds keeps its program.
const ProgramPath = "/usr/local/bin/"

// defaultPath is the PATH Docker gives a container.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Build makes the image o describes.
func Build(o BuildOptions) (v1.Image, error) {
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	prog, err := os.ReadFile(o.Program)
	if err != nil {
		return nil, err
	}
	base := newTree()
	base.file("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"))
	base.file("/etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n"))
	base.file("/etc/nsswitch.conf", 0o644, []byte("hosts: files dns\n"))
	// pith run writes the guest's own /etc/hosts; this one is for other runtimes.
	base.file("/etc/hosts", 0o644, []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"))
	base.dir("/tmp", 0o1777)
	base.dir("/root", 0o700)
	what := []string{"/etc files"}
	switch {
	case usesTLS(prog) && o.CACerts == "":
		logf("warning: %s verifies certificates, and this host has no CA bundle to give it: its checks will fail (apt-get install ca-certificates, then build again)", o.Name)
	case usesTLS(prog):
		b, err := os.ReadFile(o.CACerts)
		if err != nil {
			return nil, fmt.Errorf("the host's CA bundle: %v", err)
		}
		base.file("/etc/ssl/certs/ca-certificates.crt", 0o644, b)
		what = append(what, "CA certificates")
	}
	if usesZoneinfo(prog) && o.Zoneinfo != "" {
		if err := base.copy(o.Zoneinfo, "/usr/share/zoneinfo"); err != nil {
			return nil, fmt.Errorf("the host's time zones: %v", err)
		}
		what = append(what, "time zones")
	}
	app := newTree()
	app.file(ProgramPath+o.Name, 0o755, prog)
	if o.Workdir != "" && o.Workdir != "/" { // made, as Docker's WORKDIR makes it
		app.dir(path.Clean(o.Workdir), 0o755)
	}
	layers := []struct {
		t    *tree
		what string
	}{{base, "base: " + strings.Join(what, ", ")}, {app, "program " + ProgramPath + o.Name}}
	if len(o.Adds) > 0 {
		adds := newTree()
		for _, a := range o.Adds {
			if !path.IsAbs(a.Dst) {
				return nil, fmt.Errorf("--add %s:%s: the destination must be an absolute path", a.Src, a.Dst)
			}
			dst := a.Dst
			if strings.HasSuffix(dst, "/") {
				dst += filepath.Base(a.Src)
			}
			if err := adds.copy(a.Src, path.Clean(dst)); err != nil {
				return nil, fmt.Errorf("--add %s: %v", a.Src, err)
			}
		}
		layers = append(layers, struct {
			t    *tree
			what string
		}{adds, fmt.Sprintf("%d added files", len(adds.entries))})
	}

	entry := o.Entrypoint
	if len(entry) == 0 {
		entry = []string{ProgramPath + o.Name}
	}
	workdir := o.Workdir
	if workdir == "" {
		workdir = "/"
	}
	ports := map[string]struct{}{}
	for _, p := range o.Expose {
		if !strings.Contains(p, "/") {
			p += "/tcp"
		}
		ports[p] = struct{}{}
	}
	if len(ports) == 0 {
		ports = nil
	}
	created := v1.Time{Time: o.Created.UTC()}
	img, err := mutate.ConfigFile(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON),
		&v1.ConfigFile{
			Architecture: "amd64", OS: "linux", Created: created,
			Config: v1.Config{Entrypoint: entry, Cmd: o.Cmd, Env: append([]string{defaultPath}, o.Env...), WorkingDir: workdir,
				ExposedPorts: ports, Labels: o.Labels},
		})
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		layer, err := l.t.layer()
		if err != nil {
			return nil, err
		}
		d, err := layer.Digest()
		if err != nil {
			return nil, err
		}
		size, _ := layer.Size()
		logf("layer %s  %s (%s)", d.Hex[:12], l.what, HumanSize(size))
		if img, err = mutate.Append(img, mutate.Addendum{Layer: layer,
			History: v1.History{Created: created, CreatedBy: "pith build: " + l.what}}); err != nil {
			return nil, err
		}
	}
	return img, nil
}

// usesTLS reports whether a Go program verifies certificates, by the names its symbol
// table keeps: a program without crypto/x509's CertPool never loads the system roots.
func usesTLS(prog []byte) bool {
	return bytes.Contains(prog, []byte("crypto/x509.(*CertPool)"))
}

// usesZoneinfo reports whether a program reads time zone files: Go's time package
// names the directory only when the program can load a location.
func usesZoneinfo(prog []byte) bool {
	return bytes.Contains(prog, []byte("/usr/share/zoneinfo"))
}

// tree is a layer's files by image path.
type tree struct {
	entries map[string]*tar.Header
	data    map[string][]byte
}

func newTree() *tree { return &tree{entries: map[string]*tar.Header{}, data: map[string][]byte{}} }

// parents adds the directories above image path p.
func (t *tree) parents(p string) {
	for d := path.Dir(p); d != "/"; d = path.Dir(d) {
		if _, ok := t.entries[d]; !ok {
			t.entries[d] = &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755}
		}
	}
}

func (t *tree) file(p string, mode int64, b []byte) {
	t.parents(p)
	t.entries[p] = &tar.Header{Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(b))}
	t.data[p] = b
}

func (t *tree) dir(p string, mode int64) {
	t.parents(p)
	t.entries[p] = &tar.Header{Typeflag: tar.TypeDir, Mode: mode}
}

// copy adds host file or directory src at image path dst, keeping symbolic links as
// links and permission bits (but not set-user-ID, set-group-ID or owners).
func (t *tree) copy(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := path.Join(dst, filepath.ToSlash(rel))
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := int64(fi.Mode().Perm() | fi.Mode()&fs.ModeSticky)
		switch {
		case fi.IsDir():
			t.dir(to, mode|0o700)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			t.parents(to)
			t.entries[to] = &tar.Header{Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			t.file(to, mode, b)
		default:
			return fmt.Errorf("%s is not a file, directory or symbolic link", p)
		}
		return nil
	})
}

// layer is the tree as a gzip-compressed tar layer (compress/gzip's default level: the
// same tree makes the same bytes with the same Go release).
func (t *tree) layer() (v1.Layer, error) {
	names := make([]string, 0, len(t.entries))
	for p := range t.entries {
		names = append(names, p)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range names {
		h := *t.entries[p]
		h.Name = strings.TrimPrefix(p, "/")
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		h.ModTime = time.Unix(0, 0)
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(t.data[p]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	// Compressed here, once: a layer opened on compressed bytes hands them out as they
	// are, where one opened on a tar compresses it again at every read.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(buf.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	b := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// HumanSize is n bytes as Docker shows sizes: 1.5MB.
func HumanSize(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.3gGB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.3gMB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.3gkB", float64(n)/1e3)
	}
	return fmt.Sprintf("%dB", n)
}
