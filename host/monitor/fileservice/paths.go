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
	case p == "/tmp" || strings.HasPrefix(p, "/tmp/"):
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
		if p == "/" {
			return m.dir, ".", m.Writable, nil
		}
		return m.dir, p[1:], m.Writable, nil
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
	f, writable, err = s.openOnce(p, flags)
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
	if oflags&(unix.O_WRONLY|unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC|unix.O_APPEND) != 0 && !writable {
		return nil, false, unix.EROFS
	}
	oflags &= unix.O_ACCMODE | unix.O_CREAT | unix.O_EXCL | unix.O_TRUNC | unix.O_APPEND | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_PATH
	// No set-user-ID or set-group-ID bits: the guest's files must not grant host privileges.
	f, err := openBeneath(dir, rel, p, oflags, flags>>32&0o1777, 0)
	return f, writable, err
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

func (s *Service) rename(from, to string) error {
	return s.changeAt(from, func(dirfd int, name string) error {
		return s.changeAt(to, func(todirfd int, toname string) error {
			return unix.Renameat(dirfd, name, todirfd, toname)
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
