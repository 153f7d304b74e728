package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// Rootfs is image img's files as a host directory, unpacked once into rootfs/<digest>:
// into tmp/ first, then renamed into place, so a tree present is whole.
func (s *Store) Rootfs(img v1.Image) (string, error) {
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	dir := s.path("rootfs", d.Hex)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	unlock, err := s.lock("gc.lock", unix.LOCK_SH)
	if err != nil {
		return "", err
	}
	defer unlock()
	tmp, held, err := s.tmpDir("rootfs-")
	if err != nil {
		return "", err
	}
	defer held.Close()
	defer removeTree(tmp)
	// A damaged blob fails here with a line that says so, not in the middle of gzip.
	if err := Verify(img); err != nil {
		return "", err
	}
	if err := Unpack(img, tmp); err != nil {
		return "", s.full(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(dir); serr == nil { // another pith unpacked it meanwhile
			return dir, nil
		}
		return "", s.errorf("image store: %v", err)
	}
	return dir, nil
}

// Unpack writes img's layers, in order, into the empty directory root. No entry can
// write outside root: a name with ".." is refused, an absolute one is taken beneath
// root, and every directory on the way is looked up with RESOLVE_IN_ROOT, so a symbolic
// link in the image leads where it would inside the image, never to the host. OCI
// whiteouts (.wh.NAME, .wh..wh..opq) remove what lower layers left. Owners are not
// kept; set-user-ID and set-group-ID bits are dropped; devices and FIFOs are skipped.
func Unpack(img v1.Image, root string) error {
	rootDir, err := os.Open(root)
	if err != nil {
		return err
	}
	defer rootDir.Close()
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		d, _ := l.Digest()
		rc, err := l.Uncompressed()
		if err != nil {
			return fmt.Errorf("layer %s: %v", d.Hex[:12], err)
		}
		err = unpackLayer(rootDir, tar.NewReader(rc))
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %s: %w", d.Hex[:12], err)
		}
	}
	return nil
}

func unpackLayer(root *os.File, tr *tar.Reader) error {
	written := map[string]bool{} // this layer's entries, which an opaque whiteout keeps
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		for _, c := range strings.Split(h.Name, "/") {
			if c == ".." {
				return fmt.Errorf("entry %q climbs out of the image with ..; the image is unsafe and was not unpacked", h.Name)
			}
		}
		p := path.Clean("/" + h.Name)
		if p == "/" {
			continue
		}
		dir, base := path.Split(p)
		parent, err := mkdirInRoot(root, dir)
		if err != nil {
			return fmt.Errorf("entry %q: %w", h.Name, err)
		}
		err = unpackEntry(root, parent, base, p, h, tr, written)
		parent.Close()
		if err != nil {
			return fmt.Errorf("entry %q: %w", h.Name, err)
		}
	}
}

func unpackEntry(root, parent *os.File, base, p string, h *tar.Header, r io.Reader, written map[string]bool) error {
	pfd := int(parent.Fd())
	if base == ".wh..wh..opq" { // opaque: the directory holds only this layer's entries
		entries, err := readDirAt(parent)
		if err != nil {
			return err
		}
		dir := path.Dir(p)
		for _, e := range entries {
			if !written[path.Join(dir, e)] {
				removeAt(parent, e)
			}
		}
		return nil
	}
	if gone, ok := strings.CutPrefix(base, ".wh."); ok {
		return removeAt(parent, gone)
	}
	written[p] = true
	mode := uint32(h.Mode) & 0o1777 // no set-user-ID or set-group-ID
	switch h.Typeflag {
	case tar.TypeDir:
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				return unix.Fchmodat(pfd, base, mode|0o700, 0)
			}
			removeAt(parent, base)
		}
		return unix.Mkdirat(pfd, base, mode|0o700)
	case tar.TypeReg, tar.TypeRegA:
		removeAt(parent, base)
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode|0o400)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), p)
		_, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		return unix.Fchmodat(pfd, base, mode|0o400, 0)
	case tar.TypeSymlink:
		removeAt(parent, base)
		return unix.Symlinkat(h.Linkname, pfd, base)
	case tar.TypeLink:
		for _, c := range strings.Split(h.Linkname, "/") {
			if c == ".." {
				return fmt.Errorf("hard link to %q climbs out of the image", h.Linkname)
			}
		}
		target := path.Clean("/" + h.Linkname)
		tdir, tbase := path.Split(target)
		tparent, err := openInRoot(root, tdir)
		if err != nil {
			return err
		}
		defer tparent.Close()
		removeAt(parent, base)
		return unix.Linkat(int(tparent.Fd()), tbase, pfd, base, 0)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return nil
	default:
		return nil // pax/gnu records the reader has already applied, and kinds unknown
	}
}

// openInRoot opens directory dir (an image path) beneath root, following links as the
// image would see them, never out of root.
func openInRoot(root *os.File, dir string) (*os.File, error) {
	rel := strings.Trim(dir, "/")
	if rel == "" {
		rel = "."
	}
	fd, err := unix.Openat2(int(root.Fd()), rel, &unix.OpenHow{
		Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// mkdirInRoot is openInRoot, making missing directories on the way (a layer may name a
// file before, or without, its directory), where the image's links lead: a link to
// /data whose target does not exist yet makes /data inside the tree, as on Linux.
func mkdirInRoot(root *os.File, dir string) (*os.File, error) {
	f, err := openInRoot(root, dir)
	if !errors.Is(err, unix.ENOENT) {
		return f, err
	}
	cur := "/"
	rest := strings.Split(strings.Trim(dir, "/"), "/")
	for links := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		if c == "" || c == "." {
			continue
		}
		if c == ".." {
			cur = path.Dir(cur)
			continue
		}
		parent, err := openInRoot(root, cur)
		if err != nil {
			return nil, err
		}
		b := make([]byte, unix.PathMax)
		n, lerr := unix.Readlinkat(int(parent.Fd()), c, b)
		if lerr == nil { // a link: go on where it leads, inside the tree
			parent.Close()
			if links++; links > 40 {
				return nil, unix.ELOOP
			}
			target := string(b[:n])
			if path.IsAbs(target) {
				cur = "/"
			}
			rest = append(strings.Split(target, "/"), rest...)
			continue
		}
		err = unix.Mkdirat(int(parent.Fd()), c, 0o755)
		parent.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, err
		}
		cur = path.Join(cur, c)
	}
	return openInRoot(root, cur)
}

// removeAt removes name beneath parent, and all beneath it if a directory.
func removeAt(parent *os.File, name string) error {
	err := unix.Unlinkat(int(parent.Fd()), name, 0)
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EPERM) {
		// Through the descriptor, so that no link in the host path is followed.
		return os.RemoveAll("/proc/self/fd/" + strconv.Itoa(int(parent.Fd())) + "/" + name)
	}
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// readDirAt lists a directory opened with O_PATH.
func readDirAt(dir *os.File) ([]string, error) {
	f, err := os.Open("/proc/self/fd/" + strconv.Itoa(int(dir.Fd())))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
