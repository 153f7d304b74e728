package fileservice

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/host/monitor/memory"
)

// Mount makes host directory Host visible at guest path Guest.
type Mount struct {
	Host, Guest string
	Writable    bool
}

type mount struct {
	Mount
	dir *os.File
}

// Service gives the guest files: the project holding the host directory it was
// started in, read-only at the same path (so a test binary finds its testdata/ and the
// files its tests reach with ../), a private writable /tmp, a few
// /etc files, and the app binary as /proc/self/exe. Every path and buffer the guest hands
// over is checked; symbolic links are followed as the guest sees
// them (paths.go), so that none leads out of the directories granted.
type Service struct {
	mounts      []mount // longest guest path first
	stdio       [3]int  // pith's standard streams, the guest's (terminal.go)
	stdinServed bool    // the guest may read stdio[0] (ServeStdin)
	termMu      sync.Mutex
	termSaved   map[int][]byte // each terminal stream's modes before the guest changed them

	project    string       // the host directory shown read-only at the same path
	projectDir *os.File     // opened once; lookups go beneath it
	root       string       // per-guest host directory holding etc/ and tmp/
	dirs       *privateDirs // made at first use (private)
	exe        string       // the app's host path, as readlink /proc/self/exe shows it
	exeFile    *os.File     // the app, opened once: /proc/self/exe reopens it, never the path
	files      map[uint64]*os.File
	next       uint64

	imageRoot  string              // an image's files, shown read-only at / instead of the project (Options.Root)
	hostCwd    string              // where pith runs; started programs run there too
	rootMu     sync.Mutex          // guards root, dirs and ownsRoot
	ownsRoot   bool                // root is this guest's, removed at the end
	home       string              // the guest's $HOME, shown from root/home if set
	tmpInImage bool                // the guest's /tmp is the image's, written through the layer; else private (root/tmp)
	spawnFlags []string            // flags a started program gets (New)
	readOnly   bool                // the image root has no writable layer (Options.ReadOnly)
	hostname   string              // /etc/hostname (New)
	hosts      []Host              // /etc/hosts beyond localhost (New)
	dns        []netip.Addr        // /etc/resolv.conf's nameservers (New)
	streams    map[uint64]int      // pith's non-blocking ends of started programs' pipes
	children   map[uint64]*spawned // the programs the guest started (spawn.go)
	writable   map[uint64]bool     // handles of files in directories the guest may change
	forked     bool                // the guest is a fork's copy of another (Adopt)
	umask      uint32              // pith's own umask, which the host applies to what the guest creates (ProcessUmask)

	image      *mount                // the mount of imageRoot at /, looked up through the writable layer (layer.go)
	layerHost  string                // the writable layer's host directory (Options.Layer); empty: the private root's layer/
	writeLayer *layerDirs            // the writable layer, once it exists (layer)
	merged     map[uint64]*mergedDir // directory handles beneath the image listed through the layer
	openedDir  *mergedDir            // the directory the last open found beneath the image, for openFile

	notify notifier // FileNotify (notify.go)
}

// projectOf is the directory shown to the guest for host directory dir: the nearest one
// holding dir with a go.mod, else the nearest with a .git, else dir itself. The search
// stops below / and the home directory, whose contents are not a project's; dir itself
// is shown whatever it is.
func projectOf(dir string) string {
	home, _ := os.UserHomeDir()
	for _, marker := range []string{"go.mod", ".git"} {
		for d := dir; d != "/" && d != home; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, marker)); err == nil {
				return d
			}
		}
	}
	return dir
}

// newRoot makes a guest's private directories: etc/ with the files Linux programs read,
// tmp/ and home/. With an image's files at / (imageRoot), etc/ has only the files that
// describe this guest (hosts, resolv.conf, hostname): passwd and group are the image's,
// and a link, image, names imageRoot for the programs the guest starts.
func newRoot(hostname string, hosts []Host, dns []netip.Addr, imageRoot, layer string) (string, error) {
	root, err := os.MkdirTemp("", "pith-root-")
	if err != nil {
		return "", fmt.Errorf("creating the guest's /tmp: %v", err)
	}
	etcHosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	for _, h := range hosts {
		etcHosts += h.IP.String() + "\t" + h.Name + "\n"
	}
	// With no nameserver, a resolver tries the guest's own loopback, where none
	// listens, and fails at once.
	resolvConf := "# no network (pith run --net none)\n"
	if len(dns) > 0 {
		resolvConf = ""
		for _, ns := range dns {
			resolvConf += "nameserver " + ns.String() + "\n"
		}
	}
	etc := map[string]string{
		"hosts":       etcHosts,
		"resolv.conf": resolvConf,
		"passwd":      "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"group":       "root:x:0:\nnogroup:x:65534:\n",
		"hostname":    hostname + "\n",
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		return "", err
	}
	for _, dir := range []string{"tmp", "home"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o1777); err != nil {
			return "", err
		}
	}
	if imageRoot != "" {
		delete(etc, "passwd")
		delete(etc, "group")
		if err := os.Symlink(imageRoot, filepath.Join(root, "image")); err != nil {
			return "", err
		}
	}
	if layer != "" { // the programs the guest starts write to its layer
		if err := os.Symlink(layer, filepath.Join(root, "layer")); err != nil {
			return "", err
		}
	}
	for name, content := range etc {
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	return root, nil
}

// privateDirs are the guest's own directories, each opened on its own, so that a lookup
// beneath one cannot reach another (a link in $HOME cannot climb into etc/ or tmp/).
type privateDirs struct {
	root, etc, tmp, home *os.File
}

// private opens the guest's private directories, making them at first use: most apps
// never look, and making them costs milliseconds on every run. A shared root (from the
// guest that started this one) is opened the same way, without following links.
func (s *Service) private() (*privateDirs, error) {
	s.rootMu.Lock()
	defer s.rootMu.Unlock()
	if s.dirs != nil {
		return s.dirs, nil
	}
	var err error
	if s.root == "" {
		if s.root, err = newRoot(s.hostname, s.hosts, s.dns, s.imageRoot, s.layerHost); err != nil {
			return nil, err
		}
		s.ownsRoot = true
	}
	// The directories above those shown from the host, so that the guest can stat and
	// list its way down to them (resolve's leadsTo).
	for _, shown := range s.shownDirs() {
		if up := path.Dir(shown); shown != "" && up != "/" {
			if err := os.MkdirAll(filepath.Join(s.root, up), 0o755); err != nil {
				return nil, fmt.Errorf("the guest's %s: %v", up, err)
			}
		}
	}
	d := &privateDirs{}
	if d.root, err = os.Open(s.root); err != nil {
		return nil, err
	}
	for _, sub := range []struct {
		name string
		f    **os.File
	}{{"etc", &d.etc}, {"tmp", &d.tmp}, {"home", &d.home}} {
		if *sub.f, err = openBeneath(d.root, sub.name, sub.name, unix.O_PATH|unix.O_DIRECTORY, 0, unix.RESOLVE_NO_SYMLINKS); err != nil {
			d.close()
			return nil, fmt.Errorf("the guest's /%s: %v", sub.name, err)
		}
	}
	s.dirs = d
	return d, nil
}

func (d *privateDirs) close() {
	for _, f := range []*os.File{d.root, d.etc, d.tmp, d.home} {
		if f != nil {
			f.Close()
		}
	}
}

// Options says what a guest's files are.
type Options struct {
	Exe    string  // the app, shown as /proc/self/exe
	Mounts []Mount // host directories shown to the guest (-v)
	// SharedRoot holds the private directories (etc/, tmp/, home/) of the guest that
	// started this one; empty, a new host directory is made for them at first use.
	SharedRoot string
	Home       string   // $HOME: a private writable directory where the guest would not otherwise see one
	SpawnFlags []string // the pith run flags a program this guest starts gets (its mounts, memory, vCPUs, network)
	Hostname   string   // /etc/hostname
	Hosts      []Host   // /etc/hosts, after localhost: the guest's own name, then --add-host's
	// Nameservers are /etc/resolv.conf's: the user-mode network's (network.DNS), or none
	// with --net none.
	Nameservers []netip.Addr
	// Root, if set, is a host directory (an image's files) shown at / instead of the
	// project; the private /tmp, $HOME and /etc/{hosts,resolv.conf,hostname} and the
	// mounts still win over it. Root itself is never written: the guest's writes go to
	// its writable layer (layer.go). A guest started with SharedRoot inherits both.
	Root string
	// Layer is the host directory of the writable layer over Root, made at the first
	// write and kept (a detached unikernel's, in its state directory); empty, it is in
	// the private root and removed with it.
	Layer string
	// ReadOnly leaves Root without a writable layer: writes beneath it fail with EROFS.
	ReadOnly bool
}

// Host is a line of /etc/hosts.
type Host struct {
	IP   netip.Addr
	Name string
}

// New serves the guest's files.
func New(o Options) (*Service, error) {
	exe, mounts, home := o.Exe, o.Mounts, o.Home
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	exeFile, err := os.Open(exe)
	if err != nil {
		return nil, err
	}
	s := &Service{root: o.SharedRoot, exe: exe, exeFile: exeFile, writable: map[uint64]bool{}, imageRoot: o.Root,
		files: map[uint64]*os.File{}, next: 1, hostCwd: cwd, streams: map[uint64]int{}, children: map[uint64]*spawned{},
		spawnFlags: o.SpawnFlags, hostname: o.Hostname, hosts: o.Hosts, dns: o.Nameservers,
		layerHost: o.Layer, readOnly: o.ReadOnly, merged: map[uint64]*mergedDir{}, stdio: [3]int{0, 1, 2},
		umask: ProcessUmask()}
	if s.imageRoot == "" && o.SharedRoot != "" {
		s.imageRoot, _ = os.Readlink(filepath.Join(o.SharedRoot, "image"))
	}
	if s.imageRoot != "" {
		// The image is the whole tree: no project, and its own time zones, if any.
		mounts = append(mounts, Mount{Host: s.imageRoot, Guest: "/"})
	} else {
		s.project = projectOf(cwd)
		if s.projectDir, err = os.Open(s.project); err != nil {
			return nil, err
		}
		// Time zones, where the host has them: Go's time package and libc read them there.
		if _, err := os.Stat("/usr/share/zoneinfo"); err == nil {
			mounts = append(mounts, Mount{Host: "/usr/share/zoneinfo", Guest: "/usr/share/zoneinfo"})
		}
	}
	for _, m := range mounts {
		d, err := os.Open(m.Host)
		if err != nil {
			return nil, fmt.Errorf("-v %s: %v", m.Host, err)
		}
		if fi, err := d.Stat(); err != nil || !fi.IsDir() {
			d.Close()
			return nil, fmt.Errorf("-v %s: not a directory", m.Host)
		}
		s.mounts = append(s.mounts, mount{m, d})
	}
	sort.Slice(s.mounts, func(i, j int) bool { return len(s.mounts[i].Guest) > len(s.mounts[j].Guest) })
	for i := range s.mounts {
		if m := &s.mounts[i]; s.imageRoot != "" && m.Guest == "/" && m.Host == s.imageRoot {
			s.image = m
		}
	}
	// A unikernel's layer that outlives a run (pith run -d) holds its image's /tmp too, as
	// a container's does: kept across stop and start, gone with rm. Otherwise (a run in
	// the foreground, whose layer ends with it; an image with no /tmp; --read-only, as
	// Docker's --tmpfs /tmp) /tmp is private to the run, with no layer lookups.
	// A program such a guest starts finds the layer through the root they share (newRoot's
	// link), and so the same /tmp.
	kept := s.layerHost != ""
	if fi, err := os.Lstat(filepath.Join(o.SharedRoot, "layer")); o.SharedRoot != "" && err == nil {
		kept = fi.Mode()&os.ModeSymlink != 0
	}
	if s.image != nil && kept && !s.readOnly && s.mountFor("/tmp", false) == nil {
		st, err := lstatBeneath(s.image.dir, "tmp")
		s.tmpInImage = err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR
	}
	// $HOME, where the guest would not otherwise see it, is a private writable directory
	// (tools keep caches and settings there), as /tmp is. An image's own $HOME is in
	// its tree, written through the layer, as in a container.
	if path.IsAbs(home) && path.Clean(home) == home && home != "/" {
		_, _, _, err := s.resolve(home)
		switch {
		case s.image == nil && errors.Is(err, unix.ENOENT):
			s.home = home
		case s.image != nil && s.mountFor(home, false) == nil:
			if _, err := lstatBeneath(s.image.dir, home[1:]); err != nil {
				s.home = home
			}
		}
	}
	return s, nil
}

// Close releases the service, deletes the guest's /tmp and puts back the modes of the
// terminals the guest changed.
func (s *Service) Close() {
	s.stopNotify()
	s.restoreTerminals()
	for _, f := range s.files {
		f.Close()
	}
	if s.projectDir != nil {
		s.projectDir.Close()
	}
	if s.dirs != nil {
		s.dirs.close()
	}
	if l := s.writeLayer; l != nil {
		l.upper.Close()
		l.gone.Close()
	}
	s.exeFile.Close()
	for _, fd := range s.streams {
		unix.Close(fd)
	}
	for _, sp := range s.children { // programs still running end with the guest that started them
		sp.cmd.Process.Kill()
	}
	for _, m := range s.mounts {
		m.dir.Close()
	}
	if s.ownsRoot {
		removeTree(s.root)
	}
}

// removeTree removes a guest's private root, first making each directory in it
// writable again: the guest may have taken the permission away to keep its files.
func removeTree(root string) {
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	os.RemoveAll(root)
}

// Errno turns a host error into a negative Linux errno (0 for nil).
func Errno(err error) int64 {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return -int64(e)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return -int64(unix.ENOENT)
	}
	return -int64(unix.EIO)
}

// maxHandles bounds the host files one guest holds open: past it, open fails with EMFILE.
const maxHandles = 4096

// Serve performs one request. A bug of ours that panics fails the request with EIO and
// says so, rather than ending pith with the guest's files and programs left behind.
func (s *Service) Serve(mmu memory.Virtual, r *abi.FileRequest) (result int64) {
	defer func() {
		if e := recover(); e != nil {
			fmt.Fprintf(os.Stderr, "pith: internal error serving file request %d: %v\n", r.Op, e)
			result = -int64(unix.EIO)
		}
	}()
	return s.do(mmu, r)
}

// fileCall is one request being served: the guest's request and its memory.
type fileCall struct {
	mmu memory.Virtual
	r   *abi.FileRequest
}

// path reads the request's guest path (Path, PathLen).
func (c fileCall) path() (string, bool) { return c.readString(c.r.Path, c.r.PathLen) }

// readString reads n bytes of guest memory at va as a string of at most 4096 bytes.
func (c fileCall) readString(va, n uint64) (string, bool) {
	if n == 0 || n > 4096 {
		return "", false
	}
	b := make([]byte, n)
	if c.mmu.Read(va, b) != nil {
		return "", false
	}
	return string(b), true
}

// buffer is room for the request's Len bytes, at most 16 MiB (Len is cut to that).
func (c fileCall) buffer() []byte {
	if c.r.Len > 1<<24 {
		c.r.Len = 1 << 24
	}
	return make([]byte, c.r.Len)
}

// fileOps serves each file-service operation.
var fileOps = map[uint64]func(*Service, fileCall) int64{
	abi.FileStdin:      (*Service).stdinRead,
	abi.FileOpen:       (*Service).openFile,
	abi.FileRead:       (*Service).readWrite,
	abi.FileWrite:      (*Service).readWrite,
	abi.FileStat:       (*Service).stat,
	abi.FileStatfs:     (*Service).statfs,
	abi.FileClose:      (*Service).closeHandle,
	abi.FileReaddir:    (*Service).readdir,
	abi.FileReadlink:   (*Service).readlink,
	abi.FileSymlink:    (*Service).symlinkOrRename,
	abi.FileRename:     (*Service).symlinkOrRename,
	abi.FileLink:       (*Service).symlinkOrRename,
	abi.FileTruncate:   (*Service).truncate,
	abi.FileChmod:      (*Service).chmodFile,
	abi.FileFallocate:  (*Service).fallocate,
	abi.FileUtimes:     (*Service).utimes,
	abi.FileFlock:      (*Service).flock,
	abi.FileSpawn:      func(s *Service, c fileCall) int64 { return s.spawn(c.mmu, c.r) },
	abi.FileWaitChild:  (*Service).waitChild,
	abi.FileRusage:     (*Service).rusage,
	abi.FileSeek:       (*Service).seek,
	abi.FileTerminal:   (*Service).terminal,
	abi.FileKillChild:  func(s *Service, c fileCall) int64 { return s.killChild(c.r.Handle, c.r.Flags) },
	abi.FilePipe:       (*Service).newPipe,
	abi.FileKillParent: (*Service).killParent,
	abi.FileCanonical:  (*Service).canonicalPath,
	abi.FileMkdir:      (*Service).mkdirOrUnlink,
	abi.FileUnlink:     (*Service).mkdirOrUnlink,
	abi.FileNotify:     (*Service).notifyRequest,
	abi.FileRecordLock: (*Service).recordLock,
}

func (s *Service) do(mmu memory.Virtual, r *abi.FileRequest) int64 {
	op := fileOps[r.Op]
	if op == nil {
		return -int64(unix.ENOSYS)
	}
	return op(s, fileCall{mmu: mmu, r: r})
}

// openFile serves FileOpen: a host file beneath the directories granted, as a handle.
func (s *Service) openFile(c fileCall) int64 {
	r := c.r
	p, ok := c.path()
	if !ok {
		return -int64(unix.EFAULT)
	}
	if len(s.files)+len(s.streams) >= maxHandles {
		return -int64(unix.EMFILE)
	}
	f, writable, err := s.open(p, r.Flags)
	if err != nil {
		return Errno(err)
	}
	h := s.AddFile(f, writable)
	if s.openedDir != nil {
		s.merged[h] = s.openedDir
		s.openedDir = nil
	}
	return int64(h)
}

// readWrite serves FileRead and FileWrite: on a file at Offset, or on a pipe to a started
// program.
func (s *Service) readWrite(c fileCall) int64 {
	r, mmu := c.r, c.mmu
	if fd, ok := s.streams[r.Handle]; ok {
		return s.streamIO(mmu, r, fd)
	}
	f := s.files[r.Handle]
	if f == nil {
		return -int64(unix.EBADF)
	}
	b := c.buffer()
	current := r.Flags&abi.FileAtCurrent != 0
	if !current && r.Offset > math.MaxInt64 {
		return -int64(unix.EINVAL)
	}
	var n int
	var err error
	if r.Op == abi.FileRead {
		if current {
			n, err = unix.Read(int(f.Fd()), b)
		} else {
			n, err = f.ReadAt(b, int64(r.Offset))
		}
		if errors.Is(err, io.EOF) {
			err = nil
		}
		if n > 0 && mmu.Write(r.Buf, b[:n]) != nil {
			return -int64(unix.EFAULT)
		}
	} else {
		if mmu.Read(r.Buf, b) != nil {
			return -int64(unix.EFAULT)
		}
		if current {
			n, err = unix.Write(int(f.Fd()), b)
		} else {
			n, err = unix.Pwrite(int(f.Fd()), b, int64(r.Offset)) // appends on an O_APPEND file, as Linux's pwrite does
		}
	}
	if err != nil && n <= 0 {
		return Errno(err)
	}
	return int64(n)
}

// seek serves FileSeek: lseek on the host file, whose offset the guest's reads and
// writes at FileAtCurrent use.
func (s *Service) seek(c fileCall) int64 {
	f := s.files[c.r.Handle]
	if f == nil {
		return -int64(unix.EBADF)
	}
	off, err := unix.Seek(int(f.Fd()), int64(c.r.Offset), int(c.r.Flags))
	if err != nil {
		return Errno(err)
	}
	return off
}

// stat serves FileStat: struct stat of a handle, or of a path (Flags bit 0: do not follow
// a final link).
func (s *Service) stat(c fileCall) int64 {
	var st unix.Stat_t
	if err := s.onTarget(c, func(fd int) error { return unix.Fstat(fd, &st) }); err != nil {
		return Errno(err)
	}
	return put(c, &st) // struct stat, as Linux/amd64 lays it out
}

// statfs serves FileStatfs: struct statfs of the file system holding a handle's file, or
// a path's.
func (s *Service) statfs(c fileCall) int64 {
	var st unix.Statfs_t
	if err := s.onTarget(c, func(fd int) error { return unix.Fstatfs(fd, &st) }); err != nil {
		return Errno(err)
	}
	return put(c, &st)
}

// onTarget runs fn on the file a request names: its Handle, or else its Path (Flags bit
// 0: do not follow a final link).
func (s *Service) onTarget(c fileCall, fn func(fd int) error) error {
	if c.r.Handle != 0 {
		f := s.files[c.r.Handle]
		if f == nil {
			return unix.EBADF
		}
		return fn(int(f.Fd()))
	}
	p, ok := c.path()
	if !ok {
		return unix.EFAULT
	}
	f, _, err := s.open(p, unix.O_PATH|unix.O_NOFOLLOW*(c.r.Flags&1))
	if err != nil {
		return err
	}
	defer f.Close()
	return fn(int(f.Fd()))
}

// put writes *v, a struct in Linux/amd64's layout, to the request's Buf.
func put[T any](c fileCall, v *T) int64 {
	b := unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
	if c.r.Len < uint64(len(b)) || c.mmu.Write(c.r.Buf, b) != nil {
		return -int64(unix.EFAULT)
	}
	return 0
}

// closeHandle serves FileClose.
func (s *Service) closeHandle(c fileCall) int64 {
	r := c.r
	if fd, ok := s.streams[r.Handle]; ok {
		s.unwatch(r.Handle)
		delete(s.streams, r.Handle)
		unix.Close(fd)
		return 0
	}
	f := s.files[r.Handle]
	if f == nil {
		return -int64(unix.EBADF)
	}
	delete(s.files, r.Handle)
	delete(s.writable, r.Handle)
	delete(s.merged, r.Handle)
	f.Close()
	return 0
}

// readdir serves FileReaddir: linux_dirent64 records of a directory handle.
func (s *Service) readdir(c fileCall) int64 {
	r, mmu := c.r, c.mmu
	f := s.files[r.Handle]
	if f == nil {
		return -int64(unix.EBADF)
	}
	b := c.buffer()
	var n int
	var err error
	if m := s.merged[r.Handle]; m != nil {
		n, err = s.readMerged(m, b)
	} else {
		n, err = unix.Getdents(int(f.Fd()), b)
	}
	if err != nil {
		return Errno(err)
	}
	if mmu.Write(r.Buf, b[:n]) != nil {
		return -int64(unix.EFAULT)
	}
	return int64(n)
}

// readlink serves FileReadlink; /proc/self/exe is the app.
func (s *Service) readlink(c fileCall) int64 {
	r, mmu := c.r, c.mmu
	p, ok := c.path()
	if !ok {
		return -int64(unix.EFAULT)
	}
	target := s.exe
	if p != "/proc/self/exe" {
		parent, name, _, err := s.locate(p)
		if err != nil {
			return Errno(err)
		}
		b := make([]byte, 4096)
		n, err := unix.Readlinkat(int(parent.Fd()), name, b)
		parent.Close()
		if err != nil {
			return Errno(err)
		}
		target = string(b[:n])
	}
	n := min(uint64(len(target)), r.Len)
	if mmu.Write(r.Buf, []byte(target[:n])) != nil {
		return -int64(unix.EFAULT)
	}
	return int64(n)
}

// symlinkOrRename serves FileSymlink (Path, pointing at the string at Buf) and FileRename
// (Path to Buf).
func (s *Service) symlinkOrRename(c fileCall) int64 {
	r := c.r
	p, ok := c.path()
	other, ok2 := c.readString(r.Buf, r.Len)
	if !ok || !ok2 {
		return -int64(unix.EFAULT)
	}
	switch r.Op {
	case abi.FileSymlink:
		return Errno(s.change(p, changeCreate, func(dirfd int, name string) error { return unix.Symlinkat(other, dirfd, name) }))
	case abi.FileLink:
		return Errno(s.link(p, other))
	}
	return Errno(s.rename(p, other))
}

// truncate serves FileTruncate.
func (s *Service) truncate(c fileCall) int64 {
	r := c.r
	f := s.files[r.Handle]
	if f == nil {
		return -int64(unix.EBADF)
	}
	return Errno(f.Truncate(int64(r.Offset)))
}

// chmodFile serves FileChmod.
func (s *Service) chmodFile(c fileCall) int64 {
	r := c.r
	p, ok := c.path()
	if !ok {
		return -int64(unix.EFAULT)
	}
	return Errno(s.chmod(p, uint32(r.Flags&0o1777)))
}

// fallocate serves FileFallocate: mode, offset and length at Buf.
func (s *Service) fallocate(c fileCall) int64 {
	r, mmu := c.r, c.mmu
	f := s.files[r.Handle]
	if f == nil {
		return -int64(unix.EBADF)
	}
	var args [3]int64 // mode, offset, length
	b := unsafe.Slice((*byte)(unsafe.Pointer(&args[0])), unsafe.Sizeof(args))
	if r.Len != uint64(len(b)) || mmu.Read(r.Buf, b) != nil {
		return -int64(unix.EFAULT)
	}
	if args[1] < 0 || args[2] <= 0 {
		return -int64(unix.EINVAL)
	}
	return Errno(unix.Fallocate(int(f.Fd()), uint32(args[0]), args[1], args[2]))
}

// utimes serves FileUtimes: two timespecs at Buf.
func (s *Service) utimes(c fileCall) int64 {
	r, mmu := c.r, c.mmu
	p, ok := c.path()
	var ts [2]unix.Timespec
	b := unsafe.Slice((*byte)(unsafe.Pointer(&ts[0])), unsafe.Sizeof(ts))
	if !ok || r.Len != uint64(len(b)) || mmu.Read(r.Buf, b) != nil {
		return -int64(unix.EFAULT)
	}
	if r.Flags&unix.AT_SYMLINK_NOFOLLOW == 0 { // follow a final link here, not on the host
		var err error
		if p, err = s.canonical(p); err != nil {
			return Errno(err)
		}
	}
	return Errno(s.change(p, changeModify, func(dirfd int, name string) error {
		return unix.UtimesNanoAt(dirfd, name, ts[:], unix.AT_SYMLINK_NOFOLLOW)
	}))
}

// flock serves FileFlock.
func (s *Service) flock(c fileCall) int64 {
	r := c.r
	f := s.files[r.Handle]
	if f == nil {
		return -int64(unix.EBADF)
	}
	if !s.writable[r.Handle] {
		// Files the guest cannot change need no lock against it; taking one on the
		// host would hold up host tools that lock them to write.
		return 0
	}
	return Errno(unix.Flock(int(f.Fd()), int(r.Flags&^unix.LOCK_NB)|unix.LOCK_NB))
}

// recordLock serves FileRecordLock: fcntl's record locks, made on the host file by this
// monitor, which is the guest's process on the host: they hold against the programs the
// guest starts and host processes, and a process's own never conflict, as on Linux.
func (s *Service) recordLock(c fileCall) int64 {
	r := c.r
	f := s.files[r.Handle]
	if f == nil {
		return -int64(unix.EBADF)
	}
	switch r.Flags {
	case unix.F_GETLK, unix.F_SETLK, unix.F_OFD_GETLK, unix.F_OFD_SETLK:
	default:
		return -int64(unix.EINVAL)
	}
	if r.Len != abi.FlockSize {
		return -int64(unix.EINVAL)
	}
	var lk unix.Flock_t
	b := unsafe.Slice((*byte)(unsafe.Pointer(&lk)), abi.FlockSize)
	if c.mmu.Read(r.Buf, b) != nil {
		return -int64(unix.EFAULT)
	}
	getting := r.Flags == unix.F_GETLK || r.Flags == unix.F_OFD_GETLK
	if !s.writable[r.Handle] {
		// As flock: files the guest cannot change need no lock against it.
		lk.Type = unix.F_UNLCK
	} else if err := unix.FcntlFlock(f.Fd(), int(r.Flags), &lk); err != nil {
		return Errno(err)
	}
	if getting && c.mmu.Write(r.Buf, b) != nil {
		return -int64(unix.EFAULT)
	}
	return 0
}

// unix.Flock_t is Linux's struct flock byte for byte on x86-64: these fail to compile
// where their sizes differ.
var (
	_ [abi.FlockSize - unsafe.Sizeof(unix.Flock_t{})]byte
	_ [unsafe.Sizeof(unix.Flock_t{}) - abi.FlockSize]byte
)

// canonicalPath serves FileCanonical: the path with every link resolved, inside the
// guest's view.
func (s *Service) canonicalPath(c fileCall) int64 {
	r, mmu := c.r, c.mmu
	p, ok := c.path()
	if !ok {
		return -int64(unix.EFAULT)
	}
	canon, err := s.canonical(p)
	if err != nil {
		return Errno(err)
	}
	if uint64(len(canon)) > r.Len {
		return -int64(unix.ENAMETOOLONG)
	}
	if mmu.Write(r.Buf, []byte(canon)) != nil {
		return -int64(unix.EFAULT)
	}
	return int64(len(canon))
}

// mkdirOrUnlink serves FileMkdir and FileUnlink (Flags bit 0: a directory).
func (s *Service) mkdirOrUnlink(c fileCall) int64 {
	r := c.r
	p, ok := c.path()
	if !ok {
		return -int64(unix.EFAULT)
	}
	if r.Op == abi.FileMkdir {
		mode := uint32(r.Flags & 0o1777)
		return Errno(s.change(p, changeCreate, func(dirfd int, name string) error {
			if err := unix.Mkdirat(dirfd, name, mode); err != nil || mode&s.umask == 0 {
				return err
			}
			// Past pith's umask, on the directory made, never through a link put in its place;
			// a set-group-ID bit it took from its parent stays, as Linux keeps it.
			fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return nil
			}
			defer unix.Close(fd)
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil {
				return err
			}
			return unix.Fchmod(fd, mode|st.Mode&unix.S_ISGID)
		}))
	}
	flags, kind := 0, changeRemove
	if r.Flags&1 != 0 {
		flags, kind = unix.AT_REMOVEDIR, changeRemoveDir
	}
	return Errno(s.change(p, kind, func(dirfd int, name string) error { return unix.Unlinkat(dirfd, name, flags) }))
}

// Mappable returns the file under handle h if the monitor may map it into the guest
// (memory.Guest.MapWindow): a regular file in a directory the guest cannot change, so
// that the guest cannot shorten it beneath its own mapping.
func (s *Service) Mappable(h uint64) (*os.File, bool) {
	f, ok := s.files[h]
	if !ok || s.writable[h] {
		return nil, false
	}
	fi, err := f.Stat()
	return f, err == nil && fi.Mode().IsRegular()
}
