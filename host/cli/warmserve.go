package cli

// The warm server (`pith warm-serve`, started by runs, never by hand): see warm.go.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/host/monitor"
	"github.com/pithvm/pith/host/monitor/fileservice"
)

func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

func newWarmServeCommand() *cobra.Command {
	var f machineFlags
	var app, lock string
	c := &cobra.Command{
		Use:    "warm-serve --app PROGRAM",
		Short:  "Boot a VM for PROGRAM and keep it for the next pith run of it (PITH_WARM=1)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE:   func(*cobra.Command, []string) error { return warmServe(&f, app, lock) },
	}
	f.register(c)
	c.Flags().StringVar(&app, "app", "", "the program the VM is for")
	c.Flags().StringVar(&lock, "lock", "", "the lock file, locked on descriptor 3, that says this server lives")
	return c
}

// clockOffsets are the host clocks against CLOCK_MONOTONIC: a change means the wall
// clock was set or the host slept, and a VM booted before then tells a stale time.
func clockOffsets() (real, boot int64) {
	var m, r, b unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &m)
	unix.ClockGettime(unix.CLOCK_REALTIME, &r)
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &b)
	return r.Nano() - m.Nano(), b.Nano() - m.Nano()
}

// warmServe is a warm server's life: boot, wait to be claimed, run the claimant's command.
func warmServe(f *machineFlags, app, lock string) error {
	if app == "" || lock == "" {
		return errors.New("warm-serve is started by pith run (PITH_WARM=1), with --app and --lock")
	}
	closeInherited(3)
	os.Chdir("/")
	defer func() { os.Remove(lock) }() // by the name it has then
	cfg, err := f.config()
	if err != nil {
		return err
	}
	cfg.App = app
	idle := 10 * time.Minute
	if v := os.Getenv("PITH_WARM_IDLE"); v != "" {
		if idle, err = time.ParseDuration(v); err != nil {
			return fmt.Errorf("PITH_WARM_IDLE=%q: %v", v, err)
		}
	}
	// Caught from the start: before a claim they end the server, after it they are
	// the app's.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	dir, err := warmDir()
	if err != nil {
		return err
	}
	key, err := warmKey(cfg)
	if err != nil {
		return err
	}
	sock := filepath.Join(dir, fmt.Sprintf("%s.%d.sock", key, os.Getpid()))
	// The lock this server holds for its life gets the socket's name, so a run can tell
	// a dead server's socket from a live one's, whatever PID namespace each is in.
	named := strings.TrimSuffix(sock, ".sock") + ".lock"
	if err := os.Rename(lock, named); err != nil {
		return err
	}
	lock = named
	lfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Bind(lfd, &unix.SockaddrUnix{Name: sock}); err != nil {
		return err
	}
	removeSockets := func() {
		os.Remove(sock)
		os.Remove(lock)
		claimed, _ := filepath.Glob(sock + ".claimed-*") // a claimant killed before it removed it
		for _, c := range claimed {
			os.Remove(c)
		}
	}
	defer removeSockets()
	if err := unix.Listen(lfd, 4); err != nil {
		return err
	}
	realOff, bootOff := clockOffsets()
	cfg.AwaitApp = true
	cfg.Args, cfg.AppArgsAt = []string{"pith-kernel", "run"}, 2
	vm, err := monitor.Prepare(cfg)
	if err != nil {
		unix.Close(lfd)
		return err
	}
	accepted := make(chan int, 1)
	go func() {
		for {
			nfd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
			if err == unix.EINTR {
				continue
			}
			accepted <- nfd // -1 on error
			return
		}
	}()
	// A server no run can reach any more ends: its socket taken by a run that died
	// before connecting, or its program, kernel or pith replaced or deleted.
	self, _ := os.Executable()
	ids := func() string { return fileID(cfg.App) + "|" + fileID(cfg.Kernel) + "|" + fileID(self) }
	id := ids()
	reachable := func() bool {
		if _, err := os.Lstat(sock); err == nil {
			return ids() == id
		}
		// Claimed: a run connects within milliseconds of renaming the socket; one that
		// has not in seconds died in between.
		claimed, _ := filepath.Glob(sock + ".claimed-*")
		for _, c := range claimed {
			var st unix.Stat_t
			if unix.Lstat(c, &st) == nil && time.Since(time.Unix(st.Ctim.Unix())) < 5*time.Second {
				return true
			}
		}
		return false
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	idleEnd := time.After(idle)
	fd := -1
wait:
	for {
		select {
		case fd = <-accepted:
			break wait
		case <-sigs:
		case <-vm.Ended():
		case <-idleEnd:
		case <-tick.C:
			if reachable() {
				continue
			}
		}
		break
	}
	unix.Shutdown(lfd, unix.SHUT_RDWR) // wakes the accept
	unix.Close(lfd)
	if fd < 0 {
		vm.Close()
		return nil
	}
	conn := os.NewFile(uintptr(fd), "warm client")
	if r, b := clockOffsets(); abs(r-realOff) > 5e6 || abs(b-bootOff) > 5e6 {
		vm.Close()
		return nil // the client boots its own VM: it saw no warmRunning
	}
	status, err := serveClaim(conn, vm, cfg, sigs)
	if err != nil {
		vm.Close()
		return nil
	}
	// Done with the claimant's streams: nothing after this may write to them.
	if null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
		for i := 0; i < 3; i++ {
			unix.Dup3(int(null.Fd()), i, 0)
		}
	}
	var st [4]byte
	binary.LittleEndian.PutUint32(st[:], uint32(int32(status)))
	conn.Write(st[:])
	removeSockets()
	// The successor boots now rather than during the run: on a host with few CPUs the
	// two would slow each other.
	startWarm(cfg)
	os.Exit(0)
	return nil
}

// closeInherited closes the descriptors this process was started with beyond 0-2 and
// keep (a lock, a jobserver pipe its starter leaked), which a server would otherwise
// hold for its whole life. They are the ones without close-on-exec: Go opens all of its own,
// the runtime's included, with it.
func closeInherited(keep int) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 || fd == keep {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// serveClaim checks the claimant, takes its request and standard streams, and runs its
// command line. The status is minus SIGPIPE if writing its stdout or stderr met a
// closed pipe, or its app died of SIGPIPE: either would have killed a pith of its own.
func serveClaim(conn *os.File, vm *monitor.Prepared, cfg monitor.Config, sigs <-chan os.Signal) (int, error) {
	fd := int(conn.Fd())
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil || int(cred.Uid) != os.Getuid() {
		return 0, errors.New("a claim from another user")
	}
	theirs, err := processContext(strconv.Itoa(int(cred.Pid)))
	if err != nil || !bytes.Equal(theirs, ourContext) {
		return 0, errors.New("a claim from another context")
	}
	hdr := make([]byte, 8)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := unix.Recvmsg(fd, hdr, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil || n != 8 {
		return 0, errors.New("bad claim")
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return 0, errors.New("bad claim")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	defer func() {
		for _, f := range fds {
			unix.Close(f)
		}
	}()
	if err != nil || len(fds) != 4 {
		return 0, errors.New("bad claim")
	}
	var theirNS, ourNS unix.Stat_t
	if unix.Fstat(fds[3], &theirNS) != nil || unix.Stat("/proc/self/ns/mnt", &ourNS) != nil ||
		theirNS.Dev != ourNS.Dev || theirNS.Ino != ourNS.Ino {
		return 0, errors.New("a claim from a process that cannot see this one")
	}
	size := binary.LittleEndian.Uint64(hdr)
	if size > 64<<20 {
		return 0, errors.New("bad claim")
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(conn, body); err != nil {
		return 0, err
	}
	req, err := decodeWarmRequest(body)
	if err != nil || req.AppArgsAt < 0 || req.AppArgsAt > len(req.Args) {
		return 0, errors.New("bad claim")
	}
	run := cfg
	run.App, run.Args, run.AppArgsAt, run.Env = string(req.App), fromBytes(req.Args), req.AppArgsAt, fromBytes(req.Env)
	run.Workdir, run.Trace, run.Deadline, run.Interactive = string(req.Workdir), req.Trace, req.Deadline, true
	run.AwaitApp, run.Started = false, time.Now()
	for _, m := range req.Mounts {
		run.Mounts = append(run.Mounts, fileservice.Mount{Host: string(m.Host), Guest: string(m.Guest), Writable: m.Writable})
	}
	if !sameFile(run.App, cfg.App) {
		return 0, errors.New("another program") // replaced since the client looked
	}
	// Become the claimant: its streams (os.Stdin, os.Stdout and os.Stderr now name
	// them), directory, environment and umask.
	for i, f := range fds[:3] {
		if err := unix.Dup3(f, i, 0); err != nil {
			return 0, err
		}
	}
	if err := os.Chdir(string(req.Dir)); err != nil {
		return 0, err
	}
	os.Clearenv()
	for _, e := range fromBytes(req.ProcEnv) {
		if k, v, ok := strings.Cut(e, "="); ok {
			os.Setenv(k, v)
		}
	}
	unix.Umask(req.Umask)
	// A write to a closed stdout or stderr kills pith with SIGPIPE. Here the monitor's
	// writes see EPIPE (SIGPIPE is caught: the process must live to report), end the
	// run, and the claimant dies of SIGPIPE instead.
	signal.Notify(make(chan os.Signal, 1), unix.SIGPIPE)
	var broken atomic.Bool
	onEPIPE := func() {
		if !broken.Swap(true) {
			vm.Kill(128 + int(unix.SIGPIPE))
		}
	}
	run.Stdout = &pipeWriter{f: os.Stdout, broken: &broken, onEPIPE: onEPIPE}
	run.Stderr = &pipeWriter{f: os.Stderr, broken: &broken, onEPIPE: onEPIPE}
	run.Signals = sigs
	if _, err := conn.Write([]byte{warmRunning}); err != nil {
		return 0, err
	}
	// A client that goes away (killed) takes its run with it.
	go func() {
		var b [1]byte
		conn.Read(b[:])
		vm.Kill(128 + int(unix.SIGKILL))
	}()
	res, err := vm.Run(run)
	vm.Close()
	switch {
	case broken.Load() || err == nil && res.Signal == int(unix.SIGPIPE):
		return -int(unix.SIGPIPE), nil
	case err != nil:
		return exitStatus(err), nil
	default:
		return res.ExitCode, nil
	}
}

// pipeWriter is a warm run's stdout or stderr: a write that finds the reader gone ends
// the run, and nothing more is written to either, as when SIGPIPE kills pith.
type pipeWriter struct {
	f       *os.File
	broken  *atomic.Bool
	onEPIPE func()
}

func (w *pipeWriter) Write(p []byte) (int, error) {
	if w.broken.Load() {
		return len(p), nil
	}
	n, err := w.f.Write(p)
	if errors.Is(err, syscall.EPIPE) {
		w.onEPIPE()
	}
	return n, err
}
