package fileservice

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The writable layer. An image's unpacked files (Options.Root) are shared by every guest
// of the image and never change; each guest writes to a layer of its own over them, as a
// container writes to its own layer over its image's:
//
//	LAYER/upper/   the guest's files: what it made, and lower files it changed, copied up
//	LAYER/gone/    what the guest deleted from the image (whiteouts)
//
// A guest path beneath the image is looked up in upper first, then, unless gone/ marks
// it or a directory above it, in the image (the lower layer). Writing a lower entry
// (open for writing or truncating, chmod, utimes, rename) first copies it up, with the
// directories above it; deleting one marks it gone; listings merge both layers. A
// directory made again over a deleted one stays marked, so the image's files under it
// stay hidden: the mark makes it opaque.
//
// Whiteouts are kept beside upper, not in it: overlayfs's 0/0 character device needs
// root to make, and a name scheme inside upper (OCI's .wh.NAME) is one a guest could
// forge or stumble on by making such a file. gone/ is a tree no guest path reaches: the
// directory for guest path /a/b is gone/_a/_b (a name too long for the prefix is "#"
// and its SHA-256), and a file "gone" in it marks /a/b deleted. No guest name lacks the
// "_" or "#", so a mark never collides with a component.
//
// LAYER is the private root's layer/ (removed with it, at the end of a foreground run)
// or Options.Layer (a detached unikernel's state directory, kept across stop and start
// and removed by pith rm); a program the guest starts finds it through the shared root.
// It is made at the first write: a guest that writes nothing under / costs nothing more.

// layerDirs are a guest's writable layer, opened once it exists.
type layerDirs struct {
	upper, gone *os.File
}

// layerPath is the host directory of the guest's writable layer, or "" while there is
// none yet (no private root made).
func (s *Service) layerPath() string {
	if s.layerHost != "" {
		return s.layerHost
	}
	s.rootMu.Lock()
	defer s.rootMu.Unlock()
	if s.root == "" {
		return ""
	}
	return filepath.Join(s.root, "layer")
}

// layer is the guest's writable layer, or nil while it has none: then the image alone
// is the guest's /. A program this guest started may have made it meanwhile, so a nil
// answer is not kept.
func (s *Service) layer() *layerDirs {
	if s.image == nil {
		return nil
	}
	if s.writeLayer != nil {
		return s.writeLayer
	}
	p := s.layerPath()
	if p == "" {
		return nil
	}
	root, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer root.Close()
	l := &layerDirs{}
	if l.upper, err = openBeneath(root, "upper", "upper", unix.O_PATH|unix.O_DIRECTORY, 0, unix.RESOLVE_NO_SYMLINKS); err != nil {
		return nil
	}
	if l.gone, err = openBeneath(root, "gone", "gone", unix.O_PATH|unix.O_DIRECTORY, 0, unix.RESOLVE_NO_SYMLINKS); err != nil {
		l.upper.Close()
		return nil
	}
	s.writeLayer = l
	return l
}

// makeLayer is the guest's writable layer, made now if it has none.
func (s *Service) makeLayer() (*layerDirs, error) {
	if l := s.layer(); l != nil {
		return l, nil
	}
	if s.readOnly {
		return nil, unix.EROFS
	}
	if s.layerPath() == "" {
		if _, err := s.private(); err != nil {
			return nil, err
		}
	}
	p := s.layerPath()
	var st unix.Stat_t
	mode := uint32(0o755)
	if unix.Fstat(int(s.image.dir.Fd()), &st) == nil {
		mode = st.Mode & 0o7777
	}
	for _, d := range []struct {
		name string
		mode uint32
	}{{"", 0o700}, {"upper", mode | 0o700}, {"gone", 0o700}} {
		if err := os.Mkdir(filepath.Join(p, d.name), os.FileMode(d.mode)); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("the guest's writable layer: %v", err)
		}
	}
	os.Chmod(filepath.Join(p, "upper"), os.FileMode(mode|0o700)) // Mkdir's mode passes the umask
	if l := s.layer(); l != nil {
		return l, nil
	}
	return nil, unix.EIO
}

// goneName is the gone/ directory name for guest path component c.
func goneName(c string) string {
	if len(c) < 255 {
		return "_" + c
	}
	sum := sha256.Sum256([]byte(c))
	return "#" + hex.EncodeToString(sum[:])
}

// goneDir is the gone/ path of rel (a path beneath the image, "." for its top).
func goneDir(rel string) string {
	if rel == "." {
		return "."
	}
	parts := strings.Split(rel, "/")
	for i, c := range parts {
		parts[i] = goneName(c)
	}
	return strings.Join(parts, "/")
}

// hidden reports whether the guest deleted rel, or a directory above it, from the image.
func (l *layerDirs) hidden(rel string) bool {
	if rel == "." {
		return false
	}
	dir := ""
	for _, c := range strings.Split(rel, "/") {
		dir = path.Join(dir, goneName(c))
		var st unix.Stat_t
		if unix.Fstatat(int(l.gone.Fd()), dir, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			return false // nothing beneath was deleted either
		}
		if unix.Fstatat(int(l.gone.Fd()), dir+"/gone", &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			return true
		}
	}
	return false
}

// markGone records that the image's rel is deleted for this guest.
func (l *layerDirs) markGone(rel string) error {
	dir := ""
	for _, c := range strings.Split(rel, "/") {
		dir = path.Join(dir, goneName(c))
		if err := unix.Mkdirat(int(l.gone.Fd()), dir, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
	}
	fd, err := unix.Openat(int(l.gone.Fd()), dir+"/gone", unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// lstatBeneath is lstat of rel beneath dir, never leaving it.
func lstatBeneath(dir *os.File, rel string) (unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := unix.Openat2(int(dir.Fd()), rel, &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return st, err
	}
	defer unix.Close(fd)
	return st, unix.Fstat(fd, &st)
}

// inLower reports whether rel shows the image's entry: the guest has none of its own
// and has not deleted it.
func (s *Service) inLower(l *layerDirs, rel string) bool {
	if l != nil && l.hidden(rel) {
		return false
	}
	_, err := lstatBeneath(s.image.dir, rel)
	return err == nil
}

// unionResolve is resolve for rel beneath the image: the layer that shows it, upper if
// neither does (where it would be made). Preconditions: no directory in rel is a
// symbolic link (canonical).
func (s *Service) unionResolve(rel string) (*os.File, string, bool, error) {
	l := s.layer()
	if l == nil {
		return s.image.dir, rel, false, nil
	}
	if _, err := lstatBeneath(l.upper, rel); err == nil || l.hidden(rel) {
		return l.upper, rel, true, nil
	}
	if _, err := lstatBeneath(s.image.dir, rel); err == nil {
		return s.image.dir, rel, false, nil
	}
	// Neither has it: the layer holding its directory answers (ENOENT, or ENOTDIR under
	// a file), and a write makes it in upper (openOnce).
	if _, err := lstatBeneath(l.upper, path.Dir(rel)); err != nil {
		return s.image.dir, rel, false, nil
	}
	return l.upper, rel, true, nil
}

// imageRel is guest path p's path beneath the image, if the image shows it (no mount,
// private directory or /proc/self/exe does).
func (s *Service) imageRel(p string) (string, bool) {
	if s.image == nil {
		return "", false
	}
	dir, rel, _, err := s.resolve(p)
	if err != nil || dir == nil {
		return "", false
	}
	if dir == s.image.dir || s.writeLayer != nil && dir == s.writeLayer.upper {
		return rel, true
	}
	return "", false
}

// copyUp gives the guest its own copy of rel, which the image shows: its contents, mode
// and times, with the directories above it (their modes the image's, and writable by
// the owner, as the guest's root could write to them on Linux). Preconditions: rel is
// canonical.
func (s *Service) copyUp(l *layerDirs, rel string) error {
	if rel == "." {
		return nil
	}
	if _, err := lstatBeneath(l.upper, rel); err == nil {
		return nil
	}
	if l.hidden(rel) { // deleted: there is nothing to copy, and a path beneath it is gone
		return unix.ENOENT
	}
	if err := s.copyUp(l, path.Dir(rel)); err != nil {
		return err
	}
	src, err := openBeneath(s.image.dir, rel, rel, unix.O_PATH|unix.O_NOFOLLOW, 0, 0)
	if err != nil {
		return err
	}
	defer src.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return err
	}
	parent, err := openBeneath(l.upper, path.Dir(rel), rel, unix.O_PATH|unix.O_DIRECTORY, 0, unix.RESOLVE_NO_SYMLINKS)
	if err != nil {
		return err
	}
	defer parent.Close()
	pfd, name := int(parent.Fd()), path.Base(rel)
	times := []unix.Timespec{st.Atim, st.Mtim}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(pfd, name, st.Mode&0o1777|0o700); err != nil {
			return err
		}
		unix.Fchmodat(pfd, name, st.Mode&0o1777|0o700, 0) // past the umask
	case unix.S_IFLNK:
		b := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(int(src.Fd()), "", b)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(string(b[:n]), pfd, name); err != nil {
			return err
		}
	case unix.S_IFREG:
		return copyFileUp(src, &st, parent, name)
	default:
		return unix.EPERM // the image has no devices or FIFOs (unpack skips them)
	}
	return unix.UtimesNanoAt(pfd, name, times, unix.AT_SYMLINK_NOFOLLOW)
}

// copyFileUp copies the image's regular file src into parent as name. The copy is
// written unnamed (O_TMPFILE) and linked in whole, so that a monitor killed midway
// leaves the guest no half file.
func copyFileUp(src *os.File, st *unix.Stat_t, parent *os.File, name string) error {
	in, err := os.Open("/proc/self/fd/" + strconv.Itoa(int(src.Fd())))
	if err != nil {
		return err
	}
	defer in.Close()
	mode := st.Mode & 0o777
	tmpName := ""
	fd, err := unix.Openat(int(parent.Fd()), ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, mode)
	if err != nil { // a host file system without O_TMPFILE: a hidden name, renamed into place
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(st.Ino))
		tmpName = ".pith-copy-up-" + hex.EncodeToString(b[:])
		if fd, err = unix.Openat(int(parent.Fd()), tmpName, unix.O_CREAT|unix.O_TRUNC|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, mode); err != nil {
			return err
		}
	}
	out := os.NewFile(uintptr(fd), name)
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	unix.Fchmod(fd, mode) // past the umask
	if err := unix.UtimesNanoAt(fd, "", []unix.Timespec{st.Atim, st.Mtim}, unix.AT_EMPTY_PATH); err != nil {
		unix.Futimes(fd, []unix.Timeval{unix.NsecToTimeval(unix.TimespecToNsec(st.Atim)), unix.NsecToTimeval(unix.TimespecToNsec(st.Mtim))})
	}
	if tmpName != "" {
		return unix.Renameat(int(parent.Fd()), tmpName, int(parent.Fd()), name)
	}
	return unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), int(parent.Fd()), name, unix.AT_SYMLINK_FOLLOW)
}

// upperParent opens the guest's own directory that is to hold rel, copying it (and
// those above it) up from the image first.
func (s *Service) upperParent(l *layerDirs, rel string) (*os.File, string, error) {
	if err := s.copyUp(l, path.Dir(rel)); err != nil {
		return nil, "", err
	}
	parent, err := openBeneath(l.upper, path.Dir(rel), rel, unix.O_PATH|unix.O_DIRECTORY, 0, unix.RESOLVE_NO_SYMLINKS)
	return parent, path.Base(rel), err
}

// exists reports whether the guest sees rel beneath the image.
func (s *Service) exists(l *layerDirs, rel string) bool {
	if _, err := lstatBeneath(l.upper, rel); err == nil {
		return true
	}
	return s.inLower(l, rel)
}

// unionCreate serves a call that makes rel (mkdir, symlink): in the guest's own
// directory, unless the guest sees rel already.
func (s *Service) unionCreate(rel string, change func(dirfd int, name string) error) error {
	l, err := s.makeLayer()
	if err != nil {
		return err
	}
	if rel == "." || s.exists(l, rel) {
		return unix.EEXIST
	}
	parent, name, err := s.upperParent(l, rel)
	if err != nil {
		return err
	}
	defer parent.Close()
	return change(int(parent.Fd()), name)
}

// unionModify serves a call that changes rel in place (utimes, chmod): on the guest's
// own copy.
func (s *Service) unionModify(rel string, change func(dirfd int, name string) error) error {
	l, err := s.makeLayer()
	if err != nil {
		return err
	}
	if !s.exists(l, rel) {
		return unix.ENOENT
	}
	if err := s.copyUp(l, rel); err != nil {
		return err
	}
	if rel == "." {
		return change(int(l.upper.Fd()), ".")
	}
	parent, err := openBeneath(l.upper, path.Dir(rel), rel, unix.O_PATH|unix.O_DIRECTORY, 0, unix.RESOLVE_NO_SYMLINKS)
	if err != nil {
		return err
	}
	defer parent.Close()
	return change(int(parent.Fd()), path.Base(rel))
}

// unionRemove serves unlink and rmdir of rel: the guest's own entry goes, and the
// image's is marked gone.
func (s *Service) unionRemove(rel string, dir bool) error {
	if rel == "." {
		return unix.EBUSY
	}
	l, err := s.makeLayer()
	if err != nil {
		return err
	}
	st, upperErr := lstatBeneath(l.upper, rel)
	lower := s.inLower(l, rel)
	if upperErr != nil && !lower {
		return unix.ENOENT
	}
	if upperErr != nil {
		if st, err = lstatBeneath(s.image.dir, rel); err != nil {
			return err
		}
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	switch {
	case dir && !isDir:
		return unix.ENOTDIR
	case !dir && isDir:
		return unix.EISDIR
	case dir:
		names, err := s.unionNames(l, rel)
		if err != nil {
			return err
		}
		if len(names) > 0 {
			return unix.ENOTEMPTY
		}
	}
	if upperErr == nil {
		parent, err := openBeneath(l.upper, path.Dir(rel), rel, unix.O_PATH|unix.O_DIRECTORY, 0, unix.RESOLVE_NO_SYMLINKS)
		if err != nil {
			return err
		}
		flags := 0
		if dir {
			flags = unix.AT_REMOVEDIR
		}
		err = unix.Unlinkat(int(parent.Fd()), path.Base(rel), flags)
		parent.Close()
		if err != nil {
			return err
		}
	}
	if lower {
		return l.markGone(rel)
	}
	return nil
}

// unionNames are the names (no . or ..) the guest sees in directory rel.
func (s *Service) unionNames(l *layerDirs, rel string) ([]string, error) {
	ents, err := s.unionEntries(l, rel)
	var names []string
	for _, e := range ents {
		if n := direntName(e); n != "." && n != ".." {
			names = append(names, n)
		}
	}
	return names, err
}

// unionEntries are the linux_dirent64 records of directory rel as the guest sees it:
// its own entries, then the image's it has not replaced or deleted.
func (s *Service) unionEntries(l *layerDirs, rel string) ([][]byte, error) {
	var out [][]byte
	seen := map[string]bool{}
	found := false
	for _, dir := range []*os.File{l.upper, s.image.dir} {
		if dir == s.image.dir && !s.inLower(l, rel) {
			break
		}
		if dir == s.image.dir {
			if st, err := lstatBeneath(l.upper, rel); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
				break // the guest's own file hides the image's directory
			}
		}
		d, err := openBeneath(dir, rel, rel, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0, 0)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return nil, err
		}
		found = true
		buf := make([]byte, 32<<10)
		for {
			n, err := unix.Getdents(int(d.Fd()), buf)
			if err != nil {
				d.Close()
				return nil, err
			}
			if n == 0 {
				break
			}
			for b := buf[:n]; len(b) >= 19; {
				reclen := int(binary.LittleEndian.Uint16(b[16:18]))
				if reclen < 19 || reclen > len(b) {
					break
				}
				rec := append([]byte(nil), b[:reclen]...)
				b = b[reclen:]
				name := direntName(rec)
				if seen[name] || dir == s.image.dir && name != "." && name != ".." && l.hidden(path.Join(rel, name)) {
					continue
				}
				seen[name] = true
				out = append(out, rec)
			}
		}
		d.Close()
	}
	if !found {
		return nil, unix.ENOENT
	}
	return out, nil
}

// direntName is the name in a linux_dirent64 record: d_name, from byte 19 to its NUL.
func direntName(rec []byte) string {
	name := rec[19:]
	if i := strings.IndexByte(string(name), 0); i >= 0 {
		name = name[:i]
	}
	return string(name)
}

// mergedDir is a directory handle beneath the image while the guest has a layer: its
// listing, merged at the first read, and how much of it the guest has read.
type mergedDir struct {
	rel     string
	entries [][]byte
	read    bool
	next    int
}

// readMerged fills b with whole records of the merged listing from where the guest left
// off, as getdents64 does: 0 at the end, EINVAL if b holds not even one.
func (s *Service) readMerged(m *mergedDir, b []byte) (int, error) {
	if !m.read {
		l := s.layer()
		if l == nil {
			return 0, unix.EIO
		}
		ents, err := s.unionEntries(l, m.rel)
		if err != nil {
			return 0, err
		}
		m.entries, m.read = ents, true
	}
	n := 0
	for m.next < len(m.entries) {
		rec := m.entries[m.next]
		if n+len(rec) > len(b) {
			if n == 0 {
				return 0, unix.EINVAL
			}
			break
		}
		copy(b[n:], rec)
		binary.LittleEndian.PutUint64(b[n+8:], uint64(m.next+1)) // d_off: the next record's position
		n += len(rec)
		m.next++
	}
	return n, nil
}

// unionRenameSide prepares one side of a rename beneath the image: the guest's own
// directory to hold it, and what to do once renamed. source: rel is renamed away.
func (s *Service) unionRenameSide(l *layerDirs, rel string, source bool) (parent *os.File, name string, after func() error, err error) {
	if rel == "." {
		return nil, "", nil, unix.EBUSY
	}
	lower := s.inLower(l, rel)
	after = func() error { return nil }
	if lower {
		after = func() error { return l.markGone(rel) }
	}
	if source {
		if !s.exists(l, rel) {
			return nil, "", nil, unix.ENOENT
		}
		if lower {
			st, err := lstatBeneath(s.image.dir, rel)
			if err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
				// The image's files beneath would have to move too: overlayfs answers
				// EXDEV here as well, and mv copies instead.
				return nil, "", nil, unix.EXDEV
			}
			if err := s.copyUp(l, rel); err != nil {
				return nil, "", nil, err
			}
		}
	} else if lower {
		if st, err := lstatBeneath(s.image.dir, rel); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			names, err := s.unionNames(l, rel)
			if err != nil {
				return nil, "", nil, err
			}
			if len(names) > 0 {
				return nil, "", nil, unix.ENOTEMPTY
			}
			// The guest's empty copy makes rename(2) check what it replaces.
			if err := s.copyUp(l, rel); err != nil {
				return nil, "", nil, err
			}
		}
	}
	parent, name, err = s.upperParent(l, rel)
	if err != nil {
		return nil, "", nil, err
	}
	return parent, name, after, nil
}

// throughLayer is guest path p ready for a lookup through the writable layer: the links
// above its last component followed in the guest's view (and that one too if follow),
// so that a path that leads beneath the image is seen to. Beneath the image a path is looked up in two
// host trees, so the host must not follow a link in one of them. Most paths have no
// link: a check in each layer that finds none spares the walk (canonical) that costs a
// few host calls per component.
func (s *Service) throughLayer(p string, follow bool) (string, error) {
	if !path.IsAbs(p) || path.Clean(p) != p {
		return p, nil // resolve refuses it
	}
	dir, rel, _, err := s.resolveMount(path.Dir(p))
	free := err == nil && dir != nil && linkFree(dir, rel)
	if l := s.layer(); free && l != nil && dir == s.image.dir {
		free = linkFree(l.upper, rel)
	}
	if !free {
		return s.canonicalTarget(p, follow)
	}
	if follow && p != "/" {
		d, rel, _, err := s.resolve(p)
		if err == nil && d != nil {
			if st, err := lstatBeneath(d, rel); err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				return s.canonical(p)
			}
		}
	}
	return p, nil
}

// openThroughLayer is open while the guest has a writable layer. A read that follows
// links is tried with O_NOFOLLOW first: a last component that turns out to be a link
// (ELOOP, or an O_PATH handle on the link) is then followed in the guest's view and the
// open made again; most are no link, and so cost no extra lookup.
func (s *Service) openThroughLayer(p string, flags uint64) (*os.File, bool, error) {
	writes := flags&(unix.O_WRONLY|unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC|unix.O_APPEND) != 0
	follow := flags&unix.O_NOFOLLOW == 0
	p, err := s.throughLayer(p, follow && writes)
	if err != nil {
		return nil, false, err
	}
	if !follow || writes {
		return s.openOnce(p, flags)
	}
	f, writable, err := s.openOnce(p, flags|unix.O_NOFOLLOW)
	// A link answers ELOOP, or ENOTDIR where a directory was asked for (O_DIRECTORY is
	// checked first): Python's os.listdir of a link to a directory got ENOTDIR.
	link := errors.Is(err, unix.ELOOP) || flags&unix.O_DIRECTORY != 0 && errors.Is(err, unix.ENOTDIR)
	if err == nil && flags&unix.O_PATH != 0 {
		var st unix.Stat_t
		link = unix.Fstat(int(f.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
	}
	if !link {
		return f, writable, err
	}
	if f != nil {
		f.Close()
	}
	s.openedDir = nil
	if p, err = s.canonical(p); err != nil {
		return nil, false, err
	}
	return s.openOnce(p, flags)
}

// linkFree reports whether no directory of rel beneath dir is a symbolic link, as far as
// rel exists there (a part that does not exist holds no link either).
func linkFree(dir *os.File, rel string) bool {
	if rel == "." {
		return true
	}
	fd, err := unix.Openat2(int(dir.Fd()), rel, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS})
	if err == nil {
		unix.Close(fd)
		return true
	}
	return errors.Is(err, unix.ENOENT)
}
