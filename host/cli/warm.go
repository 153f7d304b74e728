package cli

// Warm start: with PITH_WARM=1, a program run again is handed to a VM booted for it in
// advance, which saves the boot (tier 0, tier 1's Go runtime) and the first touch of
// the program's code (docs/boot-time.md).
//
// A warm VM is a `pith warm-serve --app PROGRAM` process: a monitor that has booted a
// guest whose tier 1 has loaded PROGRAM, touched its code, and waits to be told how to
// run it. It listens on a Unix socket in a private directory, named after everything a
// run would boot the same with: the pith and kernel binaries, the program, memory,
// vCPUs, and the caller's context (namespaces, cgroup, credentials, limits). A run
// claims one by renaming that socket (only one rename succeeds), connects, and sends
// its command line, environment, working directory and umask, and its standard streams
// (SCM_RIGHTS). The server checks the claimant shares its context, takes the streams
// and runs the command line as `pith run` would; it sends back the exit status. Signals
// the client gets are forwarded to it. A run that boots its own VM (nothing to claim)
// starts a server for its program; a claimed server starts its successor once its run
// is over. An unclaimed server exits after PITH_WARM_IDLE (default 10m).
//
// Runs the warm path would not reproduce exactly boot as usual: --timing, a terminal on
// a standard stream (job control and the terminal's signals), a non-blocking standard
// stream, programs started inside a guest.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/host/monitor"
)

// warmEnabled: PITH_WARM=1 turns warm starts on.
func warmEnabled() bool { return os.Getenv("PITH_WARM") == "1" }

// maxWarm bounds the idle warm servers of a user: a run starts none past it.
const maxWarm = 8

// warmRequest is what a run sends the warm server it claimed.
type warmRequest struct {
	Args  []string // pith's command line after the program name
	Env   []string
	Dir   string
	Umask int
}

// What the server sends: warmRunning once it has taken the run (before that, the
// client may still boot a VM of its own), then the status as a little-endian int32: an
// exit status, or minus the signal pith itself died of (SIGPIPE, from a closed stdout).
const warmRunning = 'R'

// warmDir is where warm servers listen: private to this user.
func warmDir() (string, error) {
	base := os.Getenv("XDG_RUNTIME_DIR")
	if base == "" {
		base = os.TempDir()
	}
	base, err := filepath.Abs(base)
	if err != nil {
		return "", err
	}
	user := filepath.Join(base, fmt.Sprintf("pith-%d", os.Getuid()))
	dir := filepath.Join(user, "warm")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	for _, d := range []string{user, dir} {
		fi, err := os.Lstat(d)
		if err != nil {
			return "", err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !fi.IsDir() || !ok || int(st.Uid) != os.Getuid() || fi.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("%s is not a private directory of this user", d)
		}
	}
	return dir, nil
}

// processContext describes what a process runs in, beyond its uid: a warm server runs
// its claimant's program in its own context, so it must be the claimant's.
func processContext(pid string) ([]byte, error) {
	var b bytes.Buffer
	for _, ns := range []string{"cgroup", "ipc", "mnt", "net", "pid", "user", "uts"} {
		link, err := os.Readlink("/proc/" + pid + "/ns/" + ns)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "%s\n", link)
	}
	for _, f := range []string{"cgroup", "attr/current"} {
		data, _ := os.ReadFile("/proc/" + pid + "/" + f)
		fmt.Fprintf(&b, "%s\n", data)
	}
	// Credentials, groups, limits and the scheduling knobs a child inherits.
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		for _, k := range []string{"Uid:", "Gid:", "Groups:", "NoNewPrivs:", "Seccomp:", "Cpus_allowed:", "CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"} {
			if strings.HasPrefix(line, k) {
				fmt.Fprintf(&b, "%s\n", line)
			}
		}
	}
	limits, err := os.ReadFile("/proc/" + pid + "/limits")
	if err != nil {
		return nil, err
	}
	b.Write(limits)
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return nil, err
	}
	if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(f) > 17 {
		fmt.Fprintf(&b, "nice %s\n", f[16]) // field 19 of stat
	}
	return b.Bytes(), nil
}

// warmKey names what a run boots: a warm VM serves only runs that would boot the same.
func warmKey(cfg monitor.Config) (string, error) {
	h := sha256.New()
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	for _, p := range []string{self, cfg.Kernel, cfg.App} {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", err
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return "", err
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(h, "%s\x00%d %d %d %d\x00", abs, st.Dev, st.Ino, fi.Size(), fi.ModTime().UnixNano())
	}
	fmt.Fprintf(h, "%d %d %d\x00", cfg.Memory, cfg.CPUs, cfg.Mode)
	ctx, err := processContext("self")
	if err != nil {
		return "", err
	}
	h.Write(ctx)
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}

// startWarm starts a warm server for cfg's program in the background, detached from
// this run, unless the user has maxWarm already.
func startWarm(cfg monitor.Config) {
	dir, err := warmDir()
	if err != nil {
		return
	}
	if socks, _ := filepath.Glob(filepath.Join(dir, "*.sock")); len(socks) >= maxWarm {
		return
	}
	self, err := os.Executable()
	if err != nil {
		return
	}
	kernel, err1 := filepath.Abs(cfg.Kernel)
	app, err2 := filepath.Abs(cfg.App)
	null, err3 := os.Open(os.DevNull)
	if err1 != nil || err2 != nil || err3 != nil {
		return
	}
	defer null.Close()
	args := []string{"pith", "warm-serve", "-m", strconv.FormatUint(cfg.Memory, 10), "--cpus", strconv.Itoa(cfg.CPUs), "--app", app}
	if cfg.Mode == monitor.ModeStandard {
		args = append(args, "--x86-standard")
	}
	env := []string{"PITH_KERNEL=" + kernel}
	for _, k := range []string{"PITH_WARM_IDLE", "XDG_RUNTIME_DIR", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	syscall.ForkExec(self, args, &syscall.ProcAttr{
		Dir:   "/",
		Env:   env,
		Files: []uintptr{null.Fd(), null.Fd(), null.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
}

// warmable reports whether this run may go to a warm VM. Programs started inside a
// guest name files by /proc/self/fd paths only their own process can open.
func warmable(o *runOptions) bool {
	if !warmEnabled() || warmVM != nil || o.timing || o.spawnedRoot != "" || o.spawnedEnv != "" || o.spawnedExe != "" {
		return false
	}
	for fd := 0; fd < 3; fd++ {
		if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
			return false // a terminal: job control and its signals need pith itself
		}
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK != 0 {
			return false
		}
	}
	return true
}

// runWarm runs this command in a warm VM for cfg if one can be claimed. It reports
// whether it did; if not, nothing was used up and the caller boots its own.
func runWarm(cfg monitor.Config) (status int, ok bool) {
	dir, err := warmDir()
	if err != nil {
		return 0, false
	}
	key, err := warmKey(cfg)
	if err != nil {
		return 0, false
	}
	socks, _ := filepath.Glob(filepath.Join(dir, key+".*.sock"))
	for _, sock := range socks {
		claimed := fmt.Sprintf("%s.claimed-%d", sock, os.Getpid())
		if os.Rename(sock, claimed) != nil {
			continue // another run took it
		}
		if status, ok := runClaimed(claimed); ok {
			return status, true
		}
	}
	go startWarm(cfg) // for the next run, booting while this one does
	return 0, false
}

// runClaimed hands this run to the server listening on sock.
func runClaimed(sock string) (int, bool) {
	defer os.Remove(sock)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, false
	}
	conn := os.NewFile(uintptr(fd), sock)
	defer conn.Close()
	if unix.Connect(fd, &unix.SockaddrUnix{Name: sock}) != nil {
		return 0, false // a server that died: its socket is gone now
	}
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil || int(cred.Uid) != os.Getuid() {
		return 0, false
	}
	dir, err := os.Getwd()
	if err != nil {
		return 0, false
	}
	umask := unix.Umask(0)
	unix.Umask(umask)
	req, err := json.Marshal(warmRequest{Args: os.Args[1:], Env: os.Environ(), Dir: dir, Umask: umask})
	if err != nil {
		return 0, false
	}
	msg := binary.LittleEndian.AppendUint64(nil, uint64(len(req)))
	if err := unix.Sendmsg(fd, msg, unix.UnixRights(0, 1, 2), nil, 0); err != nil {
		return 0, false
	}
	if _, err := conn.Write(req); err != nil {
		return 0, false
	}
	// Signals for the app go to the server, which forwards them into the guest. Asking
	// for them starts a thread (~0.1-0.4 ms), while the server takes the run.
	sigs := make(chan os.Signal, 8)
	notified := make(chan struct{})
	go func() {
		signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
		close(notified)
		for s := range sigs {
			unix.Kill(int(cred.Pid), s.(syscall.Signal))
		}
	}()
	defer func() {
		<-notified
		signal.Stop(sigs)
	}()
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil || b[0] != warmRunning {
		return 0, false // it ended before taking the run
	}
	var st [4]byte
	if _, err := io.ReadFull(conn, st[:]); err != nil {
		fmt.Fprintf(os.Stderr, "pith: the warm VM's monitor (pid %d) ended without an exit status\n", cred.Pid)
		return exitPithError, true
	}
	status := int(int32(binary.LittleEndian.Uint32(st[:])))
	if status == -int(unix.SIGPIPE) {
		// The server met a closed stdout, which kills pith: die the same way.
		os.Stdout.Write([]byte{'\n'})
		return 128 + int(unix.SIGPIPE), true
	}
	return status, true
}

// The warm VM a warm-serve process runs its one command in, the signals it caught, and
// the context a claimant must share.
var (
	warmVM      *monitor.Prepared
	warmSignals chan os.Signal
	warmConfig  monitor.Config
	ourContext  []byte
)

// runMonitor runs cfg in the warm VM if this process has one for it, else boots.
func runMonitor(cfg monitor.Config) (*monitor.Result, error) {
	if vm := warmVM; vm != nil {
		warmVM = nil
		if !cfg.Timing && sameFile(cfg.App, warmConfig.App) && sameFile(cfg.Kernel, warmConfig.Kernel) &&
			cfg.Memory == warmConfig.Memory && cfg.CPUs == warmConfig.CPUs && cfg.Mode == warmConfig.Mode {
			defer vm.Close()
			cfg.Signals = warmSignals
			return vm.Run(cfg)
		}
		vm.Close()
	}
	return monitor.Run(cfg)
}

func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

func newWarmServeCommand() *cobra.Command {
	var f machineFlags
	var app string
	c := &cobra.Command{
		Use:    "warm-serve --app PROGRAM",
		Short:  "Boot a VM for PROGRAM and keep it for the next pith run of it (PITH_WARM=1)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE:   func(*cobra.Command, []string) error { return warmServe(&f, app) },
	}
	f.register(c)
	c.Flags().StringVar(&app, "app", "", "the program the VM is for")
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
func warmServe(f *machineFlags, app string) error {
	closeInherited()
	os.Chdir("/")
	cfg, err := f.config()
	if err != nil {
		return err
	}
	if app == "" {
		return errors.New("warm-serve needs --app")
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
	warmSignals = make(chan os.Signal, 8)
	signal.Notify(warmSignals, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	dir, err := warmDir()
	if err != nil {
		return err
	}
	key, err := warmKey(cfg)
	if err != nil {
		return err
	}
	if ourContext, err = processContext("self"); err != nil {
		return err
	}
	sock := filepath.Join(dir, fmt.Sprintf("%s.%d.sock", key, os.Getpid()))
	lfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Bind(lfd, &unix.SockaddrUnix{Name: sock}); err != nil {
		return err
	}
	removeSockets := func() {
		os.Remove(sock)
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
	fd := -1
	select {
	case fd = <-accepted:
	case <-warmSignals:
	case <-vm.Ended():
	case <-time.After(idle):
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
	status, err := serveClaim(conn, vm, cfg)
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

// closeInherited closes the descriptors this process was started with beyond 0-2 (a
// lock, a jobserver pipe its starter leaked), which a server would otherwise hold for
// its whole life. They are the ones without close-on-exec: Go opens all of its own,
// the runtime's included, with it.
func closeInherited() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
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
// closed pipe, which would have killed a pith of its own.
func serveClaim(conn *os.File, vm *monitor.Prepared, cfg monitor.Config) (int, error) {
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
	oob := make([]byte, unix.CmsgSpace(3*4))
	n, oobn, _, _, err := unix.Recvmsg(fd, hdr, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil || n != 8 {
		return 0, errors.New("bad claim")
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return 0, errors.New("bad claim")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 3 {
		for _, f := range fds {
			unix.Close(f)
		}
		return 0, errors.New("bad claim")
	}
	defer func() {
		for _, f := range fds {
			unix.Close(f)
		}
	}()
	size := binary.LittleEndian.Uint64(hdr)
	if size > 64<<20 {
		return 0, errors.New("bad claim")
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(conn, body); err != nil {
		return 0, err
	}
	var req warmRequest
	if err := json.Unmarshal(body, &req); err != nil || len(req.Args) == 0 || req.Args[0] != "run" {
		return 0, errors.New("bad claim")
	}
	// Become the claimant: its streams (os.Stdin, os.Stdout and os.Stderr now name
	// them), directory, environment and umask.
	for i, f := range fds {
		if err := unix.Dup3(f, i, 0); err != nil {
			return 0, err
		}
	}
	if err := os.Chdir(req.Dir); err != nil {
		return 0, err
	}
	os.Clearenv()
	for _, e := range req.Env {
		if k, v, ok := strings.Cut(e, "="); ok {
			os.Setenv(k, v)
		}
	}
	unix.Umask(req.Umask)
	// A write to a closed stdout or stderr kills pith with SIGPIPE; here it ends the run,
	// and the claimant dies of it.
	pipes := make(chan os.Signal, 1)
	signal.Notify(pipes, unix.SIGPIPE)
	brokenPipe := make(chan struct{})
	go func() {
		<-pipes
		close(brokenPipe)
		vm.Kill(128 + int(unix.SIGPIPE))
	}()
	if _, err := conn.Write([]byte{warmRunning}); err != nil {
		return 0, err
	}
	// A client that goes away (killed) takes its run with it.
	go func() {
		var b [1]byte
		conn.Read(b[:])
		vm.Kill(128 + int(unix.SIGKILL))
	}()
	warmVM, warmConfig = vm, cfg
	status := Main(req.Args)
	select {
	case <-brokenPipe:
		return -int(unix.SIGPIPE), nil
	default:
		return status, nil
	}
}
