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
	"sync"
	"sync/atomic"
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

// warmRequest is what a run sends the warm server it claimed: the run as this pith
// parsed it (so nothing is read twice: an --env-file that was a pipe, relative paths),
// and pith's own environment, directory and umask, for the programs the app starts.
// Strings travel as bytes: arguments and names need not be UTF-8.
type warmRequest struct {
	App       []byte
	Args      [][]byte // tier 1's argv, the app's from AppArgsAt
	AppArgsAt int
	Env       [][]byte // the app's environment
	Mounts    []warmMount
	Workdir   []byte
	Trace     bool
	Deadline  time.Duration
	ProcEnv   [][]byte
	Dir       []byte
	Umask     int
}

type warmMount struct {
	Host, Guest []byte
	Writable    bool
}

func toBytes(ss []string) [][]byte {
	b := make([][]byte, len(ss))
	for i, s := range ss {
		b[i] = []byte(s)
	}
	return b
}

func fromBytes(bs [][]byte) []string {
	s := make([]string, len(bs))
	for i, b := range bs {
		s[i] = string(b)
	}
	return s
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
	// A socket's path holds at most 107 bytes, and a claimed one's name takes up to 46.
	if len(dir) > 60 {
		return "", fmt.Errorf("%s is too long a path for the sockets of warm starts", dir)
	}
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
	root, err := os.Readlink("/proc/" + pid + "/root")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(&b, "root %s\n", root)
	for _, f := range []string{"cgroup", "attr/current", "oom_score_adj"} {
		data, _ := os.ReadFile("/proc/" + pid + "/" + f)
		fmt.Fprintf(&b, "%s\n", data)
	}
	if n, err := strconv.Atoi(pid); err == nil || pid == "self" {
		if pid == "self" {
			n = 0
		}
		prio, _, _ := unix.Syscall(unix.SYS_IOPRIO_GET, 1 /* IOPRIO_WHO_PROCESS */, uintptr(n), 0)
		fmt.Fprintf(&b, "ioprio %d\n", prio)
	}
	// Credentials, groups, limits and the scheduling knobs a child inherits.
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		for _, k := range []string{"Uid:", "Gid:", "Groups:", "NoNewPrivs:", "Seccomp:", "Seccomp_filters:", "Cpus_allowed:",
			"CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"} {
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
	if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(f) > 38 {
		// Fields 19 (nice), 40 and 41 (real-time priority, scheduling policy) of stat.
		fmt.Fprintf(&b, "nice %s rt %s policy %s\n", f[16], f[37], f[38])
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
	if ourContext, err = processContext("self"); err != nil {
		return "", err
	}
	h.Write(ourContext)
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}

// startWarm starts a warm server for cfg's program in the background, detached from
// this run, unless the user has maxWarm already.
func startWarm(cfg monitor.Config) {
	dir, err := warmDir()
	if err != nil {
		return
	}
	// Count and start under the directory's lock, so that runs starting servers at once
	// keep to the cap. A server is alive while its lock file is locked: it holds the
	// lock (taken here, inherited) for its life, in whatever PID namespace it runs.
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	defer d.Close()
	if unix.Flock(int(d.Fd()), unix.LOCK_EX) != nil {
		return
	}
	if liveServers(dir) >= maxWarm {
		return
	}
	self, err := os.Executable()
	if err != nil {
		return
	}
	kernel, err1 := filepath.Abs(cfg.Kernel)
	app, err2 := filepath.Abs(cfg.App)
	null, err3 := os.Open(os.DevNull)
	lock, err4 := os.CreateTemp(dir, "server.*.lock")
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return
	}
	defer null.Close()
	defer lock.Close()
	if unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return
	}
	args := []string{"pith", "warm-serve", "-m", strconv.FormatUint(cfg.Memory, 10), "--cpus", strconv.Itoa(cfg.CPUs),
		"--app", app, "--lock", lock.Name()}
	if cfg.Mode == monitor.ModeStandard {
		args = append(args, "--x86-standard")
	}
	env := []string{"PITH_KERNEL=" + kernel}
	for _, k := range []string{"PITH_WARM_IDLE", "XDG_RUNTIME_DIR", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	p, err := os.StartProcess(self, args, &os.ProcAttr{
		Dir:   "/",
		Env:   env,
		Files: []*os.File{null, null, null, lock}, // the lock is its fd 3
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		os.Remove(lock.Name())
		return
	}
	go p.Wait() // reaped here if it ends while this pith still runs
}

// liveServers counts the servers whose lock is held, and removes what dead ones left.
func liveServers(dir string) int {
	live := 0
	locks, _ := filepath.Glob(filepath.Join(dir, "*.lock"))
	for _, l := range locks {
		if locked(l) {
			live++
		} else {
			os.Remove(l)
			os.Remove(strings.TrimSuffix(l, ".lock") + ".sock")
		}
	}
	return live
}

// locked reports whether a server holds the lock file l: it is alive.
func locked(l string) bool {
	f, err := os.Open(l)
	if err != nil {
		return false
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == unix.EWOULDBLOCK
}

// socketPID reads a server's process ID from its socket's name (KEY.PID.sock).
func socketPID(sock string) int {
	parts := strings.Split(filepath.Base(sock), ".")
	if len(parts) != 3 {
		return 0
	}
	pid, _ := strconv.Atoi(parts[1])
	return pid
}

// warmable reports whether this run may go to a warm VM. Programs started inside a
// guest name files by /proc/self/fd paths only their own process can open.
func warmable(o *runOptions) bool {
	if !warmEnabled() || o.timing || o.spawnedRoot != "" || o.spawnedEnv != "" || o.spawnedExe != "" {
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
		if lock := strings.TrimSuffix(sock, ".sock") + ".lock"; !locked(lock) {
			os.Remove(sock) // its server died
			os.Remove(lock)
			continue
		}
		// Only a server of this context is claimed (checked again once connected: the
		// name's pid is only a hint, in another PID namespace it is someone else).
		if ctx, err := processContext(strconv.Itoa(socketPID(sock))); err != nil || !bytes.Equal(ctx, ourContext) {
			continue
		}
		claimed := fmt.Sprintf("%s.claimed-%d", sock, os.Getpid())
		if os.Rename(sock, claimed) != nil {
			continue // another run took it
		}
		if status, ok := runClaimed(claimed, cfg); ok {
			return status, true
		}
	}
	go startWarm(cfg) // for the next run, booting while this one does
	return 0, false
}

// runClaimed hands this run to the server listening on sock.
func runClaimed(sock string, cfg monitor.Config) (int, bool) {
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
	if theirs, err := processContext(strconv.Itoa(int(cred.Pid))); err != nil || !bytes.Equal(theirs, ourContext) {
		return 0, false // not a server of this context: it gets nothing of this run
	}
	dir, err := os.Getwd()
	if err != nil {
		return 0, false
	}
	umask := unix.Umask(0)
	unix.Umask(umask)
	app, err := filepath.Abs(cfg.App)
	if err != nil {
		return 0, false
	}
	r := warmRequest{App: []byte(app), Args: toBytes(cfg.Args), AppArgsAt: cfg.AppArgsAt, Env: toBytes(cfg.Env),
		Workdir: []byte(cfg.Workdir), Trace: cfg.Trace, Deadline: cfg.Deadline, ProcEnv: toBytes(os.Environ()),
		Dir: []byte(dir), Umask: umask}
	for _, m := range cfg.Mounts {
		host, err := filepath.Abs(m.Host)
		if err != nil {
			return 0, false
		}
		r.Mounts = append(r.Mounts, warmMount{Host: []byte(host), Guest: []byte(m.Guest), Writable: m.Writable})
	}
	req, err := json.Marshal(r)
	if err != nil {
		return 0, false
	}
	// Proof for the server that this run may see it: its mount namespace, which a
	// process confined away from it (Landlock, another user namespace) cannot open.
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", cred.Pid))
	if err != nil {
		return 0, false
	}
	defer ns.Close()
	msg := binary.LittleEndian.AppendUint64(nil, uint64(len(req)))
	if err := unix.Sendmsg(fd, msg, unix.UnixRights(0, 1, 2, int(ns.Fd())), nil, 0); err != nil {
		return 0, false
	}
	if _, err := conn.Write(req); err != nil {
		return 0, false
	}
	// Signals for the app go to the server, which forwards them into the guest. Asking
	// for them starts a thread (~0.1-0.4 ms), while the server takes the run. Until it
	// has, they are held: if it does not, this pith gets them back.
	sigs := make(chan os.Signal, 8)
	notified := make(chan struct{})
	var mu sync.Mutex
	var held []os.Signal
	forwarding := false
	go func() {
		signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
		close(notified)
		for s := range sigs {
			mu.Lock()
			if forwarding {
				unix.Kill(int(cred.Pid), s.(syscall.Signal))
			} else {
				held = append(held, s)
			}
			mu.Unlock()
		}
	}()
	taken := false
	defer func() {
		<-notified
		signal.Stop(sigs)
		mu.Lock()
		defer mu.Unlock()
		if !taken {
			for _, s := range held {
				unix.Kill(os.Getpid(), s.(syscall.Signal))
			}
		}
	}()
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil || b[0] != warmRunning {
		return 0, false // it ended before taking the run
	}
	taken = true
	mu.Lock()
	forwarding = true
	for _, s := range held {
		unix.Kill(int(cred.Pid), s.(syscall.Signal))
	}
	mu.Unlock()
	var st [4]byte
	if _, err := io.ReadFull(conn, st[:]); err != nil {
		fmt.Fprintf(os.Stderr, "pith: the warm VM's monitor (pid %d) ended without an exit status\n", cred.Pid)
		return exitPithError, true
	}
	status := int(int32(binary.LittleEndian.Uint32(st[:])))
	if status == -int(unix.SIGPIPE) {
		diePipe()
	}
	return status, true
}

// diePipe ends pith by SIGPIPE, as a write to a closed stdout does: it writes to a pipe
// with no reader put in place of its stdout.
func diePipe() {
	var p [2]int
	if unix.Pipe2(p[:], unix.O_CLOEXEC) == nil {
		unix.Close(p[0])
		unix.Dup3(p[1], 1, 0)
		os.Stdout.Write([]byte{0})
	}
	os.Exit(128 + int(unix.SIGPIPE))
}

// The context a warm server's claimant must share, and a client's server: this
// process's own.
var ourContext []byte

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
	closeInherited(3)
	os.Chdir("/")
	defer func() {
		if lock != "" {
			os.Remove(lock)
		}
	}()
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
	if lock != "" {
		named := strings.TrimSuffix(sock, ".sock") + ".lock"
		if err := os.Rename(lock, named); err != nil {
			return err
		}
		lock = named
	}
	lfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Bind(lfd, &unix.SockaddrUnix{Name: sock}); err != nil {
		return err
	}
	removeSockets := func() {
		os.Remove(sock)
		if lock != "" {
			os.Remove(lock)
		}
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

// fileID identifies a file's content as the kernel sees it, to notice a replaced program.
func fileID(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("%d %d %d %d", st.Dev, st.Ino, fi.Size(), fi.ModTime().UnixNano())
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
	var req warmRequest
	if err := json.Unmarshal(body, &req); err != nil || req.AppArgsAt < 0 || req.AppArgsAt > len(req.Args) {
		return 0, errors.New("bad claim")
	}
	run := cfg
	run.App, run.Args, run.AppArgsAt, run.Env = string(req.App), fromBytes(req.Args), req.AppArgsAt, fromBytes(req.Env)
	run.Workdir, run.Trace, run.Deadline, run.Interactive = string(req.Workdir), req.Trace, req.Deadline, true
	run.AwaitApp, run.Started = false, time.Now()
	for _, m := range req.Mounts {
		run.Mounts = append(run.Mounts, monitor.Mount{Host: string(m.Host), Guest: string(m.Guest), Writable: m.Writable})
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
	case broken.Load():
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
