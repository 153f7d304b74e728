package instance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Config is how a unikernel was asked to run: what `pith run -d` was given.
type Config struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	// RunArgs are pith run's flags as given, less the ones below; App and AppArgs, the
	// program and its arguments. Dir and Env are the CLI's working directory and
	// environment, which the app sees as a foreground pith run's would.
	RunArgs []string `json:"run_args"`
	App     string   `json:"app"`
	AppArgs []string `json:"app_args"`
	Dir     string   `json:"dir"`
	Env     []string `json:"env"`
	// Ports are the -p specifications, for ps and inspect.
	Ports      []string      `json:"ports,omitempty"`
	AutoRemove bool          `json:"auto_remove"`
	Restart    RestartPolicy `json:"restart"`
}

// RestartPolicy is Docker's --restart: "no", "on-failure" (at most MaxRetries times when
// MaxRetries > 0) or "always".
type RestartPolicy struct {
	Name       string `json:"name"`
	MaxRetries int    `json:"max_retries,omitempty"`
}

// The statuses of a unikernel, as Docker names them.
const (
	StatusCreated    = "created"
	StatusRunning    = "running"
	StatusRestarting = "restarting"
	StatusExited     = "exited"
)

// State is what a unikernel is doing; its monitor writes it (state.json).
type State struct {
	Status       string    `json:"status"`
	Pid          int       `json:"pid,omitempty"`
	ExitCode     int       `json:"exit_code"`
	Error        string    `json:"error,omitempty"`
	StartedAt    time.Time `json:"started_at"`
	FinishedAt   time.Time `json:"finished_at"`
	RestartCount int       `json:"restart_count"`
	// Address is the guest's own IP address; Ports, its published ports as Docker shows
	// them (127.0.0.1:8080->80/tcp), with the host ports the host picked.
	Address string   `json:"address,omitempty"`
	Ports   []string `json:"ports,omitempty"`
}

// Instance is one unikernel's state directory, as read.
type Instance struct {
	ID     string
	Dir    string
	Config Config
	State  State
}

// LogPath is the current log file; older ones are LogPath.1, LogPath.2.
func (i *Instance) LogPath() string { return filepath.Join(i.Dir, "log.json") }

// Live reports whether a monitor holds the unikernel's lock.
func (i *Instance) Live() bool { return held(filepath.Join(i.Dir, "lock")) }

// SetState writes the state. Preconditions: the caller holds the lock.
func (i *Instance) SetState(st State) error {
	i.State = st
	return writeJSON(filepath.Join(i.Dir, "state.json"), st)
}

// StopRequested marks that the user stopped or killed the unikernel, so that its restart
// policy does not start it again (Docker's "manually stopped").
func (i *Instance) StopRequested() error {
	return os.WriteFile(filepath.Join(i.Dir, "stop-requested"), nil, 0o600)
}

// TakeStopRequest reports whether a stop was requested, and clears the request.
func (i *Instance) TakeStopRequest() bool {
	return os.Remove(filepath.Join(i.Dir, "stop-requested")) == nil
}

// DiedUnrecorded is the exit code given to a unikernel whose monitor died without
// writing one: that of a kill -9, the only way a monitor ends so.
const DiedUnrecorded = 137

// load reads a state directory. A state that says the monitor lives while nobody holds
// its lock is corrected, on disk too when the lock can be taken: exited, with
// DiedUnrecorded; one with AutoRemove is removed, as its monitor would have.
func (s *Store) load(id string) (*Instance, error) {
	inst := &Instance{ID: id, Dir: filepath.Join(s.Root, id)}
	if err := readJSON(filepath.Join(inst.Dir, "config.json"), &inst.Config); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return nil, err
	}
	if err := readJSON(filepath.Join(inst.Dir, "state.json"), &inst.State); err != nil {
		return nil, err
	}
	if !inst.State.monitorClaimed() || inst.Live() {
		return inst, nil
	}
	lk, err := tryLock(filepath.Join(inst.Dir, "lock"))
	if err != nil {
		// A monitor starts, or another reader corrects it: read it as it is now.
		readJSON(filepath.Join(inst.Dir, "state.json"), &inst.State)
		return inst, nil
	}
	defer lk.Release()
	// Read again under the lock: the monitor may have written its end and exited since.
	if err := readJSON(filepath.Join(inst.Dir, "state.json"), &inst.State); err != nil {
		return nil, err
	}
	if inst.State.monitorClaimed() {
		st := inst.State
		st.Status, st.ExitCode, st.Pid = StatusExited, DiedUnrecorded, 0
		st.Error = "the monitor process died without recording how the unikernel ended (killed with SIGKILL?)"
		st.FinishedAt = time.Now()
		if fi, err := os.Stat(filepath.Join(inst.Dir, "state.json")); err == nil {
			st.FinishedAt = fi.ModTime()
		}
		if inst.Config.AutoRemove {
			s.Remove(inst)
			return nil, fmt.Errorf("%w: %s (removed as it ended)", ErrNotFound, id)
		}
		inst.SetState(st)
	}
	return inst, nil
}

// monitorClaimed reports whether the state says a monitor process looks after it.
func (st *State) monitorClaimed() bool {
	return st.Status == StatusRunning || st.Status == StatusRestarting || st.Pid != 0
}

// Lock is a held lock on a state directory. It is an open file description lock
// (F_OFD_SETLK): it belongs to the open file, so it passes to the monitor process with
// the descriptor and lasts until the last process holding that descriptor ends, however
// it ends; and F_OFD_GETLK lets a reader test it without taking it.
type Lock struct {
	f *os.File
}

// File is the lock's descriptor, to hand to the monitor process (exec.Cmd.ExtraFiles).
func (l *Lock) File() *os.File { return l.f }

// Release drops this process's hold (a monitor that inherited it keeps it).
func (l *Lock) Release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// AdoptLock takes the lock inherited as descriptor fd, and keeps it from the processes
// this one starts.
func AdoptLock(fd uintptr, name string) *Lock {
	unix.CloseOnExec(int(fd))
	return &Lock{f: os.NewFile(fd, name)}
}

var wholeFile = unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}

// lockFile creates path and takes its lock.
func lockFile(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	lk := wholeFile
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		f.Close()
		return nil, err
	}
	return &Lock{f: f}, nil
}

// ErrLocked is a lock another holds.
var ErrLocked = errors.New("locked")

// tryLock takes path's lock if no one holds it.
func tryLock(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	lk := wholeFile
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, ErrLocked
		}
		return nil, err
	}
	return &Lock{f: f}, nil
}

// TryLock takes the unikernel's lock. A reader correcting its state holds it for a
// moment, so it retries for up to a second unless the state says a monitor holds it;
// ErrLocked means one does.
func (i *Instance) TryLock() (*Lock, error) {
	deadline := time.Now().Add(time.Second)
	for {
		lk, err := tryLock(filepath.Join(i.Dir, "lock"))
		if err != ErrLocked || time.Now().After(deadline) {
			return lk, err
		}
		var st State
		if readJSON(filepath.Join(i.Dir, "state.json"), &st) == nil && st.monitorClaimed() {
			return nil, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// held reports whether anyone holds path's lock.
func held(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	lk := wholeFile
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return false
	}
	return lk.Type != unix.F_UNLCK
}

// Reload reads the unikernel's state again.
func (s *Store) Reload(i *Instance) (*Instance, error) { return s.load(i.ID) }

// A waiter (pith wait) of a unikernel run with --rm holds a read lock on ID/wait until it
// has read the exit code; the monitor, having written its final state, takes the write
// lock before it removes the directory, so that the code is not removed unread. A killed
// waiter's lock goes with it.

// HoldWait takes a waiter's hold on the unikernel's final state.
func (i *Instance) HoldWait() (*Lock, error) {
	return lockAs(filepath.Join(i.Dir, "wait"), unix.F_RDLCK)
}

// AwaitWaiters waits up to d for the waiters holding HoldWait to let go.
func (i *Instance) AwaitWaiters(d time.Duration) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if lk, err := lockAs(filepath.Join(i.Dir, "wait"), unix.F_WRLCK); err == nil {
			lk.Release()
			return
		}
	}
}

// ReadState reads the state as the monitor last wrote it.
func (i *Instance) ReadState() (State, error) {
	var st State
	err := readJSON(filepath.Join(i.Dir, "state.json"), &st)
	return st, err
}

func lockAs(path string, typ int16) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	lk := unix.Flock_t{Type: typ}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		f.Close()
		return nil, ErrLocked
	}
	return &Lock{f: f}, nil
}

// Image is the manifest digest (hex) of the image the unikernel runs, "" for a binary or
// before its monitor has found the image. It lives beside config.json, not in it: the
// monitor learns it only when it pulls a missing image.
func (i *Instance) Image() string {
	var hex string
	readJSON(filepath.Join(i.Dir, "image.json"), &hex)
	return hex
}

// SetImage records the image the unikernel runs: pith rmi and image prune keep it while
// the unikernel exists, and pith start runs it again even if its name has gone.
func (i *Instance) SetImage(hex string) error {
	return writeJSON(filepath.Join(i.Dir, "image.json"), hex)
}
