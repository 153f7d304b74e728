package fileservice

import (
	"errors"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The guest names files by guest paths; the file service maps each to a host directory it
// holds open and a path beneath it. Host lookups use RESOLVE_BENEATH, so a symbolic link
// can never lead out of the directory granted: the kernel refuses with EXDEV instead. A
// link the guest made with an absolute target, or one that climbs out with "..", is then
// followed here, in guest path space, and the lookup is retried on the result, which
// names the same file the guest would see on Linux.

// maxLinks is how many symbolic links one lookup follows before ELOOP, as on Linux.
const maxLinks = 40

// resolve maps an absolute guest path to a directory and a path beneath it, and says
// whether the guest may write there. A nil directory means rel is a host path the guest
// may only read (the app binary).
func (s *Service) resolve(p string) (dir *os.File, rel string, writable bool, err error) {
	dir, rel, writable, err = s.resolveMount(p)
	if err == nil && s.image != nil && dir == s.image.dir {
		return s.unionResolve(rel)
	}
	return dir, rel, writable, err
}

// resolveMount is resolve, but the image's own directory for a path beneath the image,
// whatever layer shows it.
func (s *Service) resolveMount(p string) (dir *os.File, rel string, writable bool, err error) {
	if !path.IsAbs(p) || path.Clean(p) != p {
		return nil, "", false, unix.EINVAL
	}
	inProject := s.project != "" && (p == s.project || strings.HasPrefix(p, s.project+"/"))
	// A mount wins over the guest's own directories: -v X:/tmp/x shows X there. One at /
	// is the exception: it fills in only what nothing else names.
	if m := s.mountFor(p, false); m != nil {
		return m.dir, beneath(p, m.Guest), m.Writable, nil
	}
	private := func() (*privateDirs, error) {
		d, err := s.private()
		if err != nil {
			return nil, unix.EIO
		}
		return d, nil
	}
	switch {
	case inProject && strings.HasPrefix(s.project, "/tmp/"):
		// pith started beneath the host's /tmp: the project wins over the guest's /tmp
	case p == "/" && s.imageRoot == "": // the guest's root: its etc/, tmp/ and home/
		d, err := private()
		if err != nil {
			return nil, "", false, err
		}
		return d.root, ".", false, nil
	case p == "/proc/self/exe":
		return nil, s.exe, false, nil
	case (p == "/tmp" || strings.HasPrefix(p, "/tmp/")) && !s.tmpInImage:
		d, err := private()
		if err != nil {
			return nil, "", false, err
		}
		return d.tmp, beneath(p, "/tmp"), true, nil
	case strings.HasPrefix(p, "/etc/"):
		d, err := private()
		if err != nil {
			return nil, "", false, err
		}
		var st unix.Stat_t
		if unix.Fstatat(int(d.etc.Fd()), beneath(p, "/etc"), &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			return d.etc, beneath(p, "/etc"), false, nil
		}
	}
	if s.home != "" && (p == s.home || strings.HasPrefix(p, s.home+"/")) {
		d, err := private()
		if err != nil {
			return nil, "", false, err
		}
		return d.home, beneath(p, s.home), true, nil
	}
	if m := s.mountFor(p, true); m != nil { // at /
		rel := "."
		if p != "/" {
			rel = p[1:]
		}
		return m.dir, rel, m.Writable, nil
	}
	if p == s.project {
		return s.projectDir, ".", false, nil
	}
	if inProject {
		return s.projectDir, strings.TrimPrefix(p, s.project+"/"), false, nil
	}
	if s.leadsTo(p) { // /usr of -v /usr/local/go: a directory, as Docker makes it
		d, err := private()
		if err != nil {
			return nil, "", false, err
		}
		return d.root, p[1:], false, nil
	}
	return nil, "", false, unix.ENOENT
}

// shownDirs are the guest directories the service shows from the host: the mounts, the
// project and $HOME.
func (s *Service) shownDirs() []string {
	dirs := []string{s.project, s.home}
	for _, m := range s.mounts {
		dirs = append(dirs, m.Guest)
	}
	return dirs
}

// leadsTo reports whether p is a directory above one the service shows: it exists in
// the guest, as the path to a mount point exists on Linux.
func (s *Service) leadsTo(p string) bool {
	for _, d := range s.shownDirs() {
		if d != "" && strings.HasPrefix(d, p+"/") {
			return true
		}
	}
	return false
}

// mountFor is the mount holding guest path p, longest first; one at / only with root.
func (s *Service) mountFor(p string, root bool) *mount {
	for i := range s.mounts {
		m := &s.mounts[i]
		if m.Guest == "/" {
			if root {
				return m
			}
			continue
		}
		if p == m.Guest || strings.HasPrefix(p, m.Guest+"/") {
			return m
		}
	}
	return nil
}

// beneath is guest path p relative to dir, which holds it: "." for dir itself.
func beneath(p, dir string) string {
	if p == dir {
		return "."
	}
	return p[len(dir)+1:]
}

// openBeneath opens rel beneath dir without leaving it; name labels the result.
func openBeneath(dir *os.File, rel, name string, flags int, mode uint64, resolve uint64) (*os.File, error) {
	fd, err := unix.Openat2(int(dir.Fd()), rel, &unix.OpenHow{
		Flags: uint64(flags | unix.O_CLOEXEC), Mode: mode,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS | resolve,
	})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// open opens a guest path on the host, and says whether the guest may change the file
// opened (the directory it was found in is writable).
func (s *Service) open(p string, flags uint64) (f *os.File, writable bool, err error) {
	s.openedDir = nil
	if s.layer() != nil {
		// Beneath the image a path is looked up in two host trees, so a link is followed
		// here, in the guest's view of both, never by the host in one of them.
		f, writable, err = s.openThroughLayer(p, flags)
	} else {
		f, writable, err = s.openOnce(p, flags)
	}
	if !errors.Is(err, unix.EXDEV) {
		return f, writable, err
	}
	dir, base := path.Split(p)
	if dir, err = s.canonical(dir); err != nil {
		return nil, false, err
	}
	p = path.Join(dir, base)
	if flags&unix.O_NOFOLLOW == 0 {
		if p, err = s.canonical(p); err != nil {
			return nil, false, err
		}
	}
	return s.openOnce(p, flags)
}

func (s *Service) openOnce(p string, flags uint64) (*os.File, bool, error) {
	dir, rel, writable, err := s.resolve(p)
	if err != nil {
		return nil, false, err
	}
	if dir == nil { // /proc/self/exe: the file opened at start, whatever its path names now
		f, err := os.Open("/proc/self/fd/" + strconv.Itoa(int(s.exeFile.Fd())))
		return f, false, err
	}
	oflags := int(flags & 0xffffffff)
	writes := oflags&(unix.O_WRONLY|unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC|unix.O_APPEND) != 0
	union := s.image != nil && (dir == s.image.dir || s.writeLayer != nil && dir == s.writeLayer.upper)
	if writes && union {
		l, err := s.makeLayer()
		if err != nil {
			return nil, false, err
		}
		if dir == s.image.dir {
			// The layer may be new: p was not looked up through it yet.
			if p2, err := s.canonicalTarget(p, oflags&unix.O_NOFOLLOW == 0); err != nil {
				return nil, false, err
			} else if p2 != p {
				return s.openOnce(p2, flags)
			}
		}
		if oflags&(unix.O_CREAT|unix.O_EXCL) == unix.O_CREAT|unix.O_EXCL && s.exists(l, rel) {
			return nil, false, unix.EEXIST
		}
		if s.inLower(l, rel) {
			if _, err := lstatBeneath(l.upper, rel); err != nil {
				if err := s.copyUp(l, rel); err != nil {
					return nil, false, err
				}
			}
		} else if rel != "." {
			parent, _, err := s.upperParent(l, rel)
			if err != nil {
				return nil, false, err
			}
			parent.Close()
		}
		dir, writable = l.upper, true
	}
	if writes && !writable {
		return nil, false, unix.EROFS
	}
	oflags &= unix.O_ACCMODE | unix.O_CREAT | unix.O_EXCL | unix.O_TRUNC | unix.O_APPEND | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_PATH
	// No set-user-ID or set-group-ID bits: the guest's files must not grant host privileges.
	// A mode without O_CREAT means nothing to open(2), and musl's fopen gives one, but
	// openat2 refuses it (EINVAL).
	mode := flags >> 32 & 0o1777
	if oflags&unix.O_CREAT == 0 {
		mode = 0
	}
	f, err := s.openCreating(dir, rel, p, oflags, uint32(mode))
	if err == nil && union && oflags&unix.O_PATH == 0 && s.layer() != nil {
		var st unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			s.openedDir = &mergedDir{rel: rel}
		}
	}
	return f, writable, err
}

// openCreating is openBeneath for the guest's open, which may create the file with
// mode, the guest's umask already applied. Where pith's own umask would take more bits,
// a file this call creates gets mode set past it, as Linux would give it: the create is
// then exclusive, so that it is known to be this call's.
func (s *Service) openCreating(dir *os.File, rel, name string, flags int, mode uint32) (*os.File, error) {
	if flags&unix.O_CREAT == 0 || mode&s.umask == 0 {
		return openBeneath(dir, rel, name, flags, uint64(mode), 0)
	}
	for range 3 { // the name may come and go meanwhile
		f, err := openBeneath(dir, rel, name, flags|unix.O_EXCL, uint64(mode), 0)
		if err == nil {
			unix.Fchmod(int(f.Fd()), mode)
			return f, nil
		}
		if !errors.Is(err, unix.EEXIST) || flags&unix.O_EXCL != 0 {
			return nil, err
		}
		f, err = openBeneath(dir, rel, name, flags&^unix.O_CREAT, 0, 0)
		if err == nil {
			var st unix.Stat_t
			if unix.Fstat(int(f.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
				f.Close()
				return nil, unix.EISDIR // as open(2) with O_CREAT answers for a directory
			}
		}
		if !errors.Is(err, unix.ENOENT) {
			return f, err
		}
	}
	// A link to a name that is not there, whose target O_CREAT creates: that file gets
	// only what pith's umask leaves of mode too.
	return openBeneath(dir, rel, name, flags, uint64(mode), 0)
}

// ProcessUmask is this process's umask: /proc/self/status says it without changing it;
// where it cannot, umask(2) sets it and puts it back at once (as pith's warm client does).
func ProcessUmask() uint32 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return uint32(n)
				}
			}
		}
	}
	old := unix.Umask(0o022)
	unix.Umask(old)
	return uint32(old)
}

// Umask is pith's own umask as New read it: the host takes its bits from what the guest
// creates unless the file service sets them back, and the guest starts with it.
func (s *Service) Umask() uint32 { return s.umask }

// canonicalTarget is guest path p with the links above its last component followed, and
// that one too if follow.
func (s *Service) canonicalTarget(p string, follow bool) (string, error) {
	if follow {
		return s.canonical(p)
	}
	dir, base := path.Split(p)
	dir, err := s.canonical(dir)
	if err != nil {
		return "", err
	}
	return path.Join(dir, base), nil
}

// canonical follows every symbolic link in guest path p, as the guest sees them, and
// returns the path with none left. A component that does not exist ends the walk: the
// rest is appended unchanged and the caller's lookup reports it.
func (s *Service) canonical(p string) (string, error) {
	done := "/"
	rest := strings.Split(p, "/")
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			done = path.Dir(done)
			continue
		}
		next := path.Join(done, c)
		dir, rel, _, err := s.resolve(next)
		if err != nil || dir == nil { // outside every granted directory, so not a link
			done = next
			continue
		}
		target, err := readlinkNoFollow(dir, rel)
		switch {
		case errors.Is(err, unix.EINVAL): // not a link
			done = next
			continue
		case errors.Is(err, unix.ENOENT):
			return path.Join(append([]string{next}, rest...)...), nil
		case err != nil:
			return "", err
		}
		if links++; links > maxLinks {
			return "", unix.ELOOP
		}
		if path.IsAbs(target) {
			done = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return done, nil
}

// readlinkNoFollow reads rel if it is a symbolic link. Every directory above it has
// already been found free of links, so none may be crossed now: a guest thread swapping
// one in meanwhile gets ELOOP rather than a way out.
func readlinkNoFollow(dir *os.File, rel string) (string, error) {
	parent, err := openBeneath(dir, path.Dir(rel), rel, unix.O_PATH|unix.O_DIRECTORY, 0, unix.RESOLVE_NO_SYMLINKS)
	if err != nil {
		return "", err
	}
	defer parent.Close()
	b := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(int(parent.Fd()), path.Base(rel), b)
	if err != nil {
		return "", err
	}
	return string(b[:n]), nil
}

// locate opens the host directory holding the last component of guest path p, following
// links above it as the guest sees them, and returns it with that component's name.
func (s *Service) locate(p string) (parent *os.File, name string, writable bool, err error) {
	if s.layer() != nil { // as open does: beneath the image, links are followed here first
		if p, err = s.throughLayer(p, false); err != nil {
			return nil, "", false, err
		}
	}
	for retried := false; ; retried = true {
		dir, rel, writable, err := s.resolve(p)
		if err != nil {
			return nil, "", false, err
		}
		if dir == nil {
			return nil, "", false, unix.EPERM
		}
		parent, err := openBeneath(dir, path.Dir(rel), rel, unix.O_PATH|unix.O_DIRECTORY, 0, 0)
		if err == nil {
			return parent, path.Base(rel), writable, nil
		}
		if !errors.Is(err, unix.EXDEV) || retried {
			return nil, "", false, err
		}
		dirPath, base := path.Split(p)
		if dirPath, err = s.canonical(dirPath); err != nil {
			return nil, "", false, err
		}
		p = path.Join(dirPath, base)
	}
}

// changeAt runs change on the directory holding guest path p's last component, where the
// guest may write.
func (s *Service) changeAt(p string, change func(dirfd int, name string) error) error {
	parent, name, writable, err := s.locate(p)
	if err != nil {
		return err
	}
	defer parent.Close()
	if !writable {
		return unix.EROFS
	}
	return change(int(parent.Fd()), name)
}

// What a change does to the name it is given (change).
const (
	changeCreate    = iota // makes it (mkdir, symlink)
	changeModify           // changes it in place (utimes)
	changeRemove           // removes a file or link (unlink)
	changeRemoveDir        // removes a directory (rmdir)
)

// change runs change on the directory holding guest path p's last component, where the
// guest may write: beneath the image, in the guest's writable layer, as kind says.
func (s *Service) change(p string, kind int, change func(dirfd int, name string) error) error {
	if s.image != nil {
		p2, err := s.throughLayer(p, false)
		if err != nil {
			return err
		}
		if rel, ok := s.imageRel(p2); ok {
			switch kind {
			case changeCreate:
				return s.unionCreate(rel, change)
			case changeModify:
				return s.unionModify(rel, change)
			default:
				return s.unionRemove(rel, kind == changeRemoveDir)
			}
		}
	}
	return s.changeAt(p, change)
}

func (s *Service) rename(from, to string) error {
	if s.image != nil {
		f, err := s.throughLayer(from, false)
		if err != nil {
			return err
		}
		t, err := s.throughLayer(to, false)
		if err != nil {
			return err
		}
		fromRel, fromImage := s.imageRel(f)
		toRel, toImage := s.imageRel(t)
		if fromImage || toImage {
			return s.unionRename(f, fromRel, fromImage, t, toRel, toImage)
		}
	}
	return s.changeAt(from, func(dirfd int, name string) error {
		return s.changeAt(to, func(todirfd int, toname string) error {
			return unix.Renameat(dirfd, name, todirfd, toname)
		})
	})
}

// link makes guest path to a hard link to the file at from. Beneath an image's files
// (its layers) it answers EXDEV, as Linux does between file systems: a link there would
// need the file copied up first.
func (s *Service) link(from, to string) error {
	if s.image != nil {
		for _, p := range []string{from, to} {
			t, err := s.throughLayer(p, false)
			if err != nil {
				return err
			}
			if _, inImage := s.imageRel(t); inImage {
				return unix.EXDEV
			}
		}
	}
	return s.changeAt(from, func(dirfd int, name string) error {
		return s.changeAt(to, func(todirfd int, toname string) error {
			return unix.Linkat(dirfd, name, todirfd, toname, 0)
		})
	})
}

// chmod changes the mode of the file guest path p names, following links: the file's
// own guest path says whether the guest may change it. Linux has no fchmod for an O_PATH
// descriptor, but chmod through its /proc/self/fd entry works.
func (s *Service) chmod(p string, mode uint32) error {
	p, err := s.canonical(p)
	if err != nil {
		return err
	}
	if rel, ok := s.imageRel(p); ok {
		return s.unionModify(rel, func(dirfd int, name string) error {
			return unix.Fchmodat(dirfd, name, mode, 0)
		})
	}
	f, writable, err := s.openOnce(p, unix.O_PATH)
	if err != nil {
		return err
	}
	defer f.Close()
	if !writable {
		return unix.EROFS
	}
	return unix.Chmod("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), mode)
}

// unionRename renames from to to where one or both are beneath the image: there, in the
// guest's writable layer.
func (s *Service) unionRename(from, fromRel string, fromImage bool, to, toRel string, toImage bool) error {
	l, err := s.makeLayer()
	if err != nil {
		return err
	}
	side := func(p, rel string, image, source bool) (*os.File, string, func() error, error) {
		if image {
			return s.unionRenameSide(l, rel, source)
		}
		parent, name, writable, err := s.locate(p)
		if err != nil {
			return nil, "", nil, err
		}
		if !writable {
			parent.Close()
			return nil, "", nil, unix.EROFS
		}
		return parent, name, func() error { return nil }, nil
	}
	fp, fname, fafter, err := side(from, fromRel, fromImage, true)
	if err != nil {
		return err
	}
	defer fp.Close()
	tp, tname, tafter, err := side(to, toRel, toImage, false)
	if err != nil {
		return err
	}
	defer tp.Close()
	if err := unix.Renameat(int(fp.Fd()), fname, int(tp.Fd()), tname); err != nil {
		return err
	}
	if err := fafter(); err != nil {
		return err
	}
	return tafter()
}
