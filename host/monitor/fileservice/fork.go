package fileservice

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/host/monitor/memory"
)

// A fork without exec copies the whole guest (host/monitor/fork.go): the copy is another
// pith run, started here as a program the guest started is, which resumes from the
// parent's memory instead of booting. It has every file the parent has open under the
// same handle, and the pipe ends tier 1 made for it (FilePipe) as its own streams: that
// is how a pipe in the parent's memory reaches the copy.

// ForkState is what the copy learns from its parent, as JSON (pith run --forked).
type ForkState struct {
	TSC   uint64     `json:"tsc"`   // the parent's TSC at the fork: the copy's clock goes on from it
	Files []ForkFile `json:"files"` // its open files
	Next  uint64     `json:"next"`  // the parent's next handle
	// Windows are the parent's file window mappings (memory.Window), each file descriptor
	// FD in the copy's pith: the copy maps them where they were before its memory is
	// restored.
	Windows []ForkWindow `json:"windows,omitempty"`
}

// ForkWindow is one mapping of the parent's file window.
type ForkWindow struct {
	GPA uint64 `json:"gpa"`
	Len uint64 `json:"len"`
	Off int64  `json:"off"`
	FD  int    `json:"fd"`
}

// ForkFile is one open file of the parent, descriptor FD in the copy's pith.
type ForkFile struct {
	Handle   uint64 `json:"handle"`
	FD       int    `json:"fd"`
	Writable bool   `json:"writable,omitempty"`
	Stream   bool   `json:"stream,omitempty"` // a pipe end, read and written without waiting
}

// Fork starts the copy of a guest whose memory is mem (memory.Snapshot) and whose clock
// read tsc, with the file window mappings windows; r.Buf holds the stream handles
// (uint64s, r.Len bytes) that pass to it and close here. It answers a child handle, as
// spawn does.
func (s *Service) Fork(mmu memory.Virtual, r *abi.FileRequest, mem *os.File, tsc uint64, windows []memory.Window) int64 {
	if e := s.roomForChild(); e != 0 {
		return e
	}
	if r.Len%8 != 0 || r.Len > 8*maxHandles {
		return -int64(unix.EINVAL)
	}
	raw := make([]byte, r.Len)
	if mmu.Read(r.Buf, raw) != nil {
		return -int64(unix.EFAULT)
	}
	passed := map[uint64]bool{}
	for i := 0; i < len(raw); i += 8 {
		h := binary.LittleEndian.Uint64(raw[i:])
		if _, ok := s.streams[h]; !ok {
			return -int64(unix.EBADF)
		}
		passed[h] = true
	}
	self, err := os.Executable()
	if err != nil {
		return -int64(unix.EAGAIN) // fork's answer when no process can be made
	}
	// Descriptors 3, 4 and 5: the app, the memory, the state; then the files.
	st := ForkState{TSC: tsc, Next: s.next}
	extra := []*os.File{s.exeFile, mem, nil}
	for h, f := range s.files {
		st.Files = append(st.Files, ForkFile{Handle: h, FD: 3 + len(extra), Writable: s.writable[h]})
		extra = append(extra, f)
	}
	for _, w := range windows {
		st.Windows = append(st.Windows, ForkWindow{GPA: w.GPA, Len: w.Len, Off: w.Off, FD: 3 + len(extra)})
		extra = append(extra, w.File)
	}
	var dups []*os.File // of the streams passed, closed once the copy has them
	defer func() {
		for _, f := range dups {
			f.Close()
		}
	}()
	for h := range passed {
		fd, err := unix.FcntlInt(uintptr(s.streams[h]), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return Errno(err)
		}
		dups = append(dups, os.NewFile(uintptr(fd), "pipe"))
		st.Files = append(st.Files, ForkFile{Handle: h, FD: 3 + len(extra), Stream: true})
		extra = append(extra, dups[len(dups)-1])
	}
	stateFile, err := os.CreateTemp(s.root, "fork-")
	if err != nil {
		return Errno(err)
	}
	os.Remove(stateFile.Name())
	defer stateFile.Close()
	if err := json.NewEncoder(stateFile).Encode(st); err != nil {
		return Errno(err)
	}
	stateFile.Seek(0, 0)
	extra[2] = stateFile
	args := append([]string{"run", "--spawned-root=" + s.root, "--forked=/proc/self/fd/5"}, s.spawnFlags...)
	cmd := exec.Command(self, append(args, "--", "/proc/self/fd/3")...)
	cmd.Dir = s.hostCwd
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return -int64(unix.EAGAIN)
	}
	for h := range passed { // the copy's now
		unix.Close(s.streams[h])
		delete(s.streams, h)
	}
	return s.track(cmd)
}

// track records a program started (spawn, Fork) as a child of the guest, answering its
// handle.
func (s *Service) track(cmd *exec.Cmd) int64 {
	sp := &spawned{cmd: cmd}
	marker := filepath.Join(s.root, "spawned", strconv.Itoa(cmd.Process.Pid))
	os.WriteFile(marker, nil, 0o600)
	go func() {
		cmd.Wait()
		os.Remove(marker)
		sp.mu.Lock()
		sp.done, sp.wait = true, waitStatus(cmd.ProcessState)
		if u, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			sp.usage = *u
		}
		notify := sp.notify
		sp.mu.Unlock()
		if notify {
			s.notify.done()
		}
	}()
	h := s.next
	s.next++
	s.children[h] = sp
	return int64(h)
}

// Adopt gives a guest copied at a fork its parent's files (ForkState, the descriptors
// named there, which it takes over).
func (s *Service) Adopt(st ForkState) {
	for _, f := range st.Files {
		if f.Stream {
			s.streams[f.Handle] = f.FD
			continue
		}
		s.files[f.Handle] = os.NewFile(uintptr(f.FD), "inherited")
		if f.Writable {
			s.writable[f.Handle] = true
		}
	}
	s.next = max(s.next, st.Next)
	s.forked = true
}

// AddFile gives the guest an open host file, which the service takes over, and returns
// its handle: a file the guest opened, or one the program that started it had open
// (pith run --spawned-fds). Writable: in a directory the guest may change.
func (s *Service) AddFile(f *os.File, writable bool) uint64 {
	h := s.next
	s.next++
	s.files[h] = f
	if writable {
		s.writable[h] = true
	}
	return h
}

// addStream gives the guest a host pipe's end that does not block, which the service
// takes over, and returns its handle.
func (s *Service) addStream(fd int) uint64 {
	h := s.next
	s.next++
	s.streams[h] = fd
	return h
}

// InheritStream gives the guest a host pipe at a descriptor above 2 that the program
// which started it had open (pith run --spawned-fds), as a stream that does not block,
// and returns its handle. The pipe's descriptor becomes the service's.
func (s *Service) InheritStream(f *os.File) (uint64, error) {
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return 0, err
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return 0, err
	}
	return s.addStream(fd), nil
}

// killParent serves FileKillParent: a signal from a fork's child to its parent, whose
// pith is this one's parent process and passes the signals a user sends it on to its
// guest; any other would end that pith, so it is dropped.
func (s *Service) killParent(c fileCall) int64 {
	if !s.forked {
		return -int64(unix.ESRCH)
	}
	switch sig := unix.Signal(c.r.Flags); sig {
	case unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2:
		return Errno(unix.Kill(os.Getppid(), sig))
	}
	return 0
}

// newPipe serves FilePipe: a host pipe, both ends streams of this guest.
func (s *Service) newPipe(c fileCall) int64 {
	if len(s.files)+len(s.streams)+2 > maxHandles {
		return -int64(unix.EMFILE)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return Errno(err)
	}
	h := s.next
	s.next += 2
	s.streams[h], s.streams[h+1] = p[0], p[1]
	return int64(h)
}
