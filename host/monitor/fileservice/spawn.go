package fileservice

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/host/monitor/memory"
)

// A program the guest starts (execve in a vfork child; see guest/kernel/spawn.go) runs
// as a unikernel of its own: pith run again, with this one's mounts, memory, vCPUs,
// working directory and /tmp. Its standard streams are pith's own, /dev/null, a host
// file the guest has open, or a pipe whose other end the guest reads or writes through
// a non-blocking handle, so that no vCPU waits on it.

// spawned is a program the guest started.
type spawned struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	done   bool
	notify bool  // the guest waits to be told of its end (FileNotify)
	wait   int64 // its Linux wait status, once done
	usage  syscall.Rusage
}

// maxChildren bounds the programs running at once, each a VM on the host, in the whole
// tree a top-level pith run started (its guest, the programs it started, theirs...):
// past it, execve fails with EAGAIN, as under RLIMIT_NPROC. They are counted by marker
// files in the private root the tree shares, which no guest path reaches.
const maxChildren = 64

func (s *Service) spawn(mmu memory.Virtual, r *abi.FileRequest) int64 {
	if len(s.files)+len(s.streams)+3 > maxHandles {
		return -int64(unix.EAGAIN) // handles for its pipes
	}
	if e := s.roomForChild(); e != 0 {
		return e
	}
	req, asked, e := readSpawnRequest(mmu, r)
	if e != 0 {
		return e
	}
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&req)), unsafe.Sizeof(req))
	path, cwd, exePath, argv, env := asked.path, asked.cwd, asked.exe, asked.argv, asked.env

	// The program is opened here, beneath the directories granted, and handed over open:
	// no host path is looked up again outside the guest's view.
	exe, _, err := s.open(path, unix.O_RDONLY)
	if err != nil {
		return Errno(err)
	}
	defer exe.Close()
	if fi, err := exe.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return -int64(unix.EACCES)
	}
	if e := s.runnable(exe); e != 0 {
		return e
	}
	self, err := os.Executable()
	if err != nil {
		return -int64(unix.ENOEXEC)
	}
	// The environment is the program's, not pith's: it goes over as a file (fd 4), so
	// that nothing the guest sets (TMPDIR, PITH_KERNEL) steers the host side.
	envFile, err := os.CreateTemp(s.root, "env-")
	if err != nil {
		return Errno(err)
	}
	os.Remove(envFile.Name())
	defer envFile.Close()
	if _, err := envFile.WriteString(strings.Join(env, "\x00")); err != nil {
		return Errno(err)
	}
	envFile.Seek(0, 0)
	if c, err := s.canonical(exePath); err == nil {
		exePath = c
	}
	args := append([]string{"run", "--spawned-root=" + s.root, "--spawned-env=/proc/self/fd/4", "--spawned-exe=" + exePath,
		"--spawned-argv0=" + argv[0], "--workdir=" + cwd, "--spawned-umask=" + strconv.FormatUint(req.Umask&0o777, 8)}, s.spawnFlags...)
	var theirs []*os.File // the program's pipe ends, closed here once it starts
	var ours []uint64     // handles of pith's ends, closed if it does not
	fail := func(e int64) int64 {
		for _, f := range theirs {
			f.Close()
		}
		for _, h := range ours {
			unix.Close(s.streams[h])
			delete(s.streams, h)
		}
		req.Handle = [3]uint64{}
		for i := range req.Inherited {
			req.Inherited[i].Handle = 0
		}
		mmu.Write(r.Buf, raw)
		return e
	}
	// pipe makes a host pipe for kind (abi.SpawnPipeIn or SpawnPipeOut): the program's
	// end, and the handle of pith's, which does not block.
	pipe := func(kind uint64) (*os.File, uint64, error) {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			return nil, 0, err
		}
		their, our := p[0], p[1]
		if kind == abi.SpawnPipeOut {
			their, our = p[1], p[0]
		}
		unix.SetNonblock(our, true)
		f := os.NewFile(uintptr(their), "pipe")
		theirs = append(theirs, f)
		h := s.addStream(our)
		ours = append(ours, h)
		return f, h, nil
	}
	stdio := make([]*os.File, 3)
	for n, kind := range req.Stdio {
		switch kind {
		case abi.SpawnNull:
		case abi.SpawnStdin:
			stdio[n] = os.Stdin
		case abi.SpawnStdout:
			stdio[n] = os.Stdout
		case abi.SpawnStderr:
			stdio[n] = os.Stderr
		case abi.SpawnFile:
			if stdio[n] = s.files[req.Handle[n]]; stdio[n] == nil {
				return fail(-int64(unix.EBADF))
			}
		case abi.SpawnPipeIn, abi.SpawnPipeOut:
			var err error
			if stdio[n], req.Handle[n], err = pipe(kind); err != nil {
				return fail(Errno(err))
			}
		case abi.SpawnLikeStdout:
			if n != 2 || req.Stdio[1] != abi.SpawnPipeOut {
				return fail(-int64(unix.EINVAL))
			}
			stdio[2] = stdio[1] // exec.Cmd then gives the program one descriptor at 1 and 2
		default:
			return fail(-int64(unix.EINVAL))
		}
	}
	// Descriptors above 2 go to the program's pith at descriptors of its own, after its
	// program (3) and environment (4), named in --spawned-fds.
	extra := []*os.File{exe, envFile}
	inherited, e := s.inherited(&req)
	if e != 0 {
		return fail(e)
	}
	if len(s.files)+len(s.streams)+len(inherited) > maxHandles {
		return fail(-int64(unix.EAGAIN))
	}
	// A standard descriptor that is a host file goes the same way: the program has it as
	// the file it is (lseek, pread, fstat), read and written at the file's own offset,
	// shared with this guest as Linux's programs share it (`while read l; do prog; done
	// <FILE`), and it gets /dev/null as pith's.
	var spec []string
	pass := func(fd uint64, f *os.File, kind, flags, handle uint64, path string) {
		w := 0
		if kind == abi.SpawnFile && s.writable[handle] {
			w = 1
		}
		spec = append(spec, fmt.Sprintf("%d:%d:%d:%#x:%d:%x", fd, 3+len(extra), kind, flags, w, path))
		extra = append(extra, f)
	}
	for n := range stdio {
		if req.Stdio[n] != abi.SpawnFile {
			continue
		}
		fl, err := unix.FcntlInt(stdio[n].Fd(), unix.F_GETFL, 0)
		if err != nil {
			return fail(Errno(err))
		}
		pass(uint64(n), stdio[n], abi.SpawnFile, uint64(fl&^unix.O_LARGEFILE), req.Handle[n], "")
		if n == 0 {
			stdio[n] = nil
		}
	}
	for i, f := range inherited {
		fd := &req.Inherited[i]
		if fd.Kind != abi.SpawnFile {
			var err error
			if f, fd.Handle, err = pipe(fd.Kind); err != nil {
				return fail(Errno(err))
			}
		}
		pass(uint64(fd.FD), f, fd.Kind, uint64(fd.Flags), fd.Handle, asked.inheritedPaths[i])
	}
	if len(spec) > 0 {
		args = append(args, "--spawned-fds="+strings.Join(spec, ","))
	}
	cmd := exec.Command(self, append(append(args, "--", "/proc/self/fd/3"), argv[1:]...)...)
	cmd.Dir = s.hostCwd
	cmd.ExtraFiles = extra
	// The program dies with the vCPU thread that started it, that is with this guest; its
	// own programs die with it in turn.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio[0], stdio[1], stdio[2]
	if cmd.Stdin == nil {
		cmd.Stdin = nil // exec.Cmd gives the program /dev/null
	}
	if err := cmd.Start(); err != nil {
		return fail(-int64(unix.ENOEXEC))
	}
	for _, f := range theirs {
		f.Close()
	}
	h := s.track(cmd) // tracked before the answer, which the guest could make fail
	if mmu.Write(r.Buf, raw) != nil {
		return -int64(unix.EFAULT)
	}
	return h
}

// inherited returns the host files of the descriptors above 2 a started program
// inherits (abi.SpawnRequest.Inherited; nil for a pipe, which spawn makes), or the errno
// to answer with: EINVAL for a list that is not ascending descriptors above 2 or a kind
// that is neither a file nor a pipe, EBADF for a handle that is no open file.
func (s *Service) inherited(req *abi.SpawnRequest) ([]*os.File, int64) {
	if req.NInherited > abi.SpawnMaxInherited {
		return nil, -int64(unix.EINVAL)
	}
	files := make([]*os.File, req.NInherited)
	last := uint32(2)
	for i, fd := range req.Inherited[:req.NInherited] {
		if fd.FD <= last || fd.FD >= maxGuestFD {
			return nil, -int64(unix.EINVAL)
		}
		last = fd.FD
		switch fd.Kind {
		case abi.SpawnFile:
			if files[i] = s.files[fd.Handle]; files[i] == nil {
				return nil, -int64(unix.EBADF)
			}
		case abi.SpawnPipeIn, abi.SpawnPipeOut: // made by spawn
		default:
			return nil, -int64(unix.EINVAL)
		}
	}
	return files, 0
}

// maxGuestFD is one more than the highest descriptor a guest process has (tier 1's table).
const maxGuestFD = 1 << 20

// roomForChild answers 0 if the guest may start one more program (spawn, Fork), else
// the errno: EAGAIN past maxChildren running in the tree, or programs never waited for.
func (s *Service) roomForChild() int64 {
	if len(s.children) >= maxHandles {
		return -int64(unix.EAGAIN)
	}
	if _, err := s.private(); err != nil { // shared with the program
		return Errno(err)
	}
	os.Mkdir(filepath.Join(s.root, "spawned"), 0o700)
	if running, err := os.ReadDir(filepath.Join(s.root, "spawned")); err != nil || len(running) >= maxChildren {
		return -int64(unix.EAGAIN)
	}
	return 0
}

// spawnRequest is a started program as the guest asked for it (abi.SpawnRequest).
type spawnRequest struct {
	path, cwd, exe string
	argv, env      []string
	inheritedPaths []string // the guest paths of req.Inherited's files
}

// readSpawnRequest reads the guest's abi.SpawnRequest at r.Buf and decodes the strings
// it points to, or returns the negative errno to answer with.
func readSpawnRequest(mmu memory.Virtual, r *abi.FileRequest) (req abi.SpawnRequest, asked spawnRequest, e int64) {
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&req)), unsafe.Sizeof(req))
	if r.Len != uint64(len(raw)) || mmu.Read(r.Buf, raw) != nil {
		return req, asked, -int64(unix.EFAULT)
	}
	if req.StringsLen == 0 || req.StringsLen > 2<<20 || req.Argc == 0 || req.Argc > 1<<17 || req.Envc > 1<<17 {
		return req, asked, -int64(unix.E2BIG)
	}
	if req.NInherited > abi.SpawnMaxInherited {
		return req, asked, -int64(unix.EINVAL)
	}
	b := make([]byte, req.StringsLen)
	if mmu.Read(req.Strings, b) != nil {
		return req, asked, -int64(unix.EFAULT)
	}
	strs := bytes.Split(bytes.TrimSuffix(b, []byte{0}), []byte{0})
	if uint64(len(strs)) != 3+req.Argc+req.Envc+req.NInherited {
		return req, asked, -int64(unix.EINVAL)
	}
	str := func(i uint64) string { return string(strs[i]) }
	asked = spawnRequest{path: str(0), cwd: str(1), exe: str(2),
		argv: make([]string, req.Argc), env: make([]string, req.Envc)}
	for i := range asked.argv {
		asked.argv[i] = str(3 + uint64(i))
	}
	for i := range asked.env {
		asked.env[i] = str(3 + req.Argc + uint64(i))
	}
	for i := range req.NInherited {
		asked.inheritedPaths = append(asked.inheritedPaths, str(3+req.Argc+req.Envc+i))
	}
	return req, asked, 0
}

// runnable answers 0 for an executable pith runs: x86-64 ELF, static, or dynamic with
// its dynamic linker in the guest's image; else the errno execve gives on Linux: ENOEXEC
// for a format it cannot run, ENOENT for a dynamic linker that is not there.
func (s *Service) runnable(f *os.File) int64 {
	ef, err := elf.NewFile(f)
	if err != nil || ef.Class != elf.ELFCLASS64 || ef.Machine != elf.EM_X86_64 ||
		ef.Type != elf.ET_EXEC && ef.Type != elf.ET_DYN {
		return -int64(unix.ENOEXEC)
	}
	for _, p := range ef.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		if s.imageRoot == "" {
			return -int64(unix.ENOEXEC) // the host's libraries are not the guest's
		}
		b := make([]byte, min(p.Filesz, 4096))
		if _, err := p.ReadAt(b, 0); err != nil {
			return -int64(unix.ENOEXEC)
		}
		interp, _, err := s.open(strings.TrimRight(string(b), "\x00"), unix.O_RDONLY)
		if err != nil {
			return -int64(unix.ENOENT)
		}
		interp.Close()
	}
	return 0
}

// waitStatus turns how a pith run ended into the Linux wait status its guest program
// would have had: a started program's pith dies of the signal its program died of
// (host/cli dieOf), and otherwise exits with its program's status.
func waitStatus(ps *os.ProcessState) int64 {
	ws, _ := ps.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return int64(ws.Signal())
	}
	return int64(ws.ExitStatus()&0xff) << 8
}

func (s *Service) waitChild(c fileCall) int64 {
	r := c.r
	sp := s.children[r.Handle]
	if sp == nil {
		return -int64(unix.ECHILD)
	}
	if r.Buf != 0 && r.Len != abi.RusageSize {
		return -int64(unix.EINVAL)
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if !sp.done {
		return -int64(unix.EAGAIN)
	}
	if r.Buf != 0 && c.mmu.Write(r.Buf, rusageBytes(&sp.usage)) != nil {
		return -int64(unix.EFAULT)
	}
	delete(s.children, r.Handle)
	return sp.wait
}

// rusage serves FileRusage: this process's resource use, or its ended children's.
func (s *Service) rusage(c fileCall) int64 {
	r := c.r
	who := unix.RUSAGE_SELF
	switch {
	case r.Len != abi.RusageSize:
		return -int64(unix.EINVAL)
	case r.Flags == abi.RusageChildren:
		who = unix.RUSAGE_CHILDREN
	case r.Flags != abi.RusageSelf:
		return -int64(unix.EINVAL)
	}
	var u syscall.Rusage
	if err := syscall.Getrusage(who, &u); err != nil {
		return Errno(err)
	}
	if c.mmu.Write(r.Buf, rusageBytes(&u)) != nil {
		return -int64(unix.EFAULT)
	}
	return 0
}

// syscall.Rusage is Linux's struct rusage field for field on x86-64: these fail to
// compile where their sizes differ.
var (
	_ [abi.RusageSize - unsafe.Sizeof(syscall.Rusage{})]byte
	_ [unsafe.Sizeof(syscall.Rusage{}) - abi.RusageSize]byte
)

// rusageBytes is u as Linux's struct rusage.
func rusageBytes(u *syscall.Rusage) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(u)), abi.RusageSize)
}

func (s *Service) killChild(h uint64, sig uint64) int64 {
	sp := s.children[h]
	if sp == nil || sig == 0 || sig > 64 {
		return -int64(unix.ESRCH)
	}
	if err := sp.cmd.Process.Signal(syscall.Signal(sig)); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return Errno(err)
	}
	return 0
}

// streamIO reads or writes pith's end of a started program's pipe, never waiting.
func (s *Service) streamIO(mmu memory.Virtual, r *abi.FileRequest, fd int) int64 {
	if r.Op == abi.FileWrite && r.Len == 0 { // is anyone reading?
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if n, _ := unix.Poll(pfd, 0); n > 0 && pfd[0].Revents&unix.POLLERR != 0 {
			return -int64(unix.EPIPE)
		}
		return 0
	}
	b := make([]byte, min(r.Len, 1<<20))
	var n int
	var err error
	if r.Op == abi.FileRead {
		if n, err = unix.Read(fd, b); err == nil && n > 0 && mmu.Write(r.Buf, b[:n]) != nil {
			return -int64(unix.EFAULT)
		}
	} else {
		if mmu.Read(r.Buf, b) != nil {
			return -int64(unix.EFAULT)
		}
		n, err = unix.Write(fd, b)
	}
	if err != nil {
		return Errno(err)
	}
	return int64(n)
}
