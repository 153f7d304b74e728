package cli

// Warm start: with PITH_WARM=1, a program run again is handed to a VM booted for it in
// advance, which saves the boot (tier 0, tier 1's Go runtime) and the first touch of
// the program's code (docs/boot-time.md). This file is the run's side; warmserve.go is
// the server's. docs/architecture.md, "Warm start", has the whole design.
//
// A warm VM is a `pith warm-serve --app PROGRAM` process: a monitor that has booted a
// guest whose tier 1 has loaded PROGRAM, touched its code, and waits to be told how to
// run it. It listens on a Unix socket in a private directory, named after everything a
// run would boot the same with (warmKey), and lives while it holds a lock file of the
// same name. A run claims one by renaming that socket (only one rename succeeds),
// connects, checks the server's context, and sends the run as it parsed it, pith's own
// environment, directory and umask, its standard streams and a proof that it can see
// the server (SCM_RIGHTS). The server runs it and sends back the exit status. Signals
// the run gets are forwarded to it. A run that boots its own VM (nothing to claim)
// starts a server for its program; a claimed server starts its successor once its run
// is over.
//
// Runs the warm path would not reproduce exactly boot as usual: --timing, a terminal on
// a standard stream (job control and the terminal's signals), a non-blocking standard
// stream, programs started inside a guest.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

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

// encode lays the request out for the socket: byte strings and lists as a length and
// their contents, numbers as varints. (encoding/json took 0.3 ms to decode one in a
// fresh server process, a tenth of a warm run's host side.)
func (r *warmRequest) encode() []byte {
	var b []byte
	str := func(s []byte) { b = append(binary.AppendUvarint(b, uint64(len(s))), s...) }
	list := func(l [][]byte) {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, s := range l {
			str(s)
		}
	}
	flag := func(v bool) {
		if v {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	str(r.App)
	list(r.Args)
	b = binary.AppendVarint(b, int64(r.AppArgsAt))
	list(r.Env)
	b = binary.AppendUvarint(b, uint64(len(r.Mounts)))
	for _, m := range r.Mounts {
		str(m.Host)
		str(m.Guest)
		flag(m.Writable)
	}
	str(r.Workdir)
	flag(r.Trace)
	b = binary.AppendVarint(b, int64(r.Deadline))
	list(r.ProcEnv)
	str(r.Dir)
	return binary.AppendVarint(b, int64(r.Umask))
}

// decodeWarmRequest reads what encode wrote; anything short, long or malformed is an error.
func decodeWarmRequest(b []byte) (*warmRequest, error) {
	bad := false
	num := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	signed := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	str := func() []byte {
		n := num()
		if bad || n > uint64(len(b)) {
			bad = true
			return nil
		}
		s := b[:n:n]
		b = b[n:]
		return s
	}
	list := func() [][]byte {
		n := num()
		if bad || n > uint64(len(b)) { // each item takes a byte at least
			bad = true
			return nil
		}
		l := make([][]byte, 0, min(n, 1024)) // grown as items arrive, not as the peer claims
		for i := uint64(0); i < n && !bad; i++ {
			l = append(l, str())
		}
		return l
	}
	flag := func() bool {
		if len(b) == 0 || b[0] > 1 {
			bad = true
			return false
		}
		v := b[0] == 1
		b = b[1:]
		return v
	}
	r := &warmRequest{App: str(), Args: list(), AppArgsAt: int(signed()), Env: list()}
	if n := num(); !bad && n <= uint64(len(b)) {
		for i := uint64(0); i < n && !bad; i++ {
			r.Mounts = append(r.Mounts, warmMount{Host: str(), Guest: str(), Writable: flag()})
		}
	} else {
		bad = true
	}
	r.Workdir, r.Trace, r.Deadline = str(), flag(), time.Duration(signed())
	r.ProcEnv, r.Dir, r.Umask = list(), str(), int(signed())
	if bad || len(b) != 0 {
		return nil, errors.New("bad claim")
	}
	return r, nil
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
		id := fileID(abs)
		if id == "" {
			return "", fmt.Errorf("%s is gone", abs)
		}
		fmt.Fprintf(h, "%s\x00%s\x00", abs, id)
	}
	fmt.Fprintf(h, "%d %d %d\x00", cfg.Memory, cfg.CPUs, cfg.Mode)
	if ourContext, err = processContext("self"); err != nil {
		return "", err
	}
	h.Write(ourContext)
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}

// fileID identifies a file's content as the kernel sees it ("" if it is gone): a
// replaced program, kernel or pith is another file.
func fileID(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("%d %d %d %d", st.Dev, st.Ino, fi.Size(), fi.ModTime().UnixNano())
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
// guest name files by /proc/self/fd paths only their own process can open. A warm VM
// has one vCPU: it waits for its run in an exit that holds tier 0's lock, where any
// other vCPU would spin.
func warmable(o *runOptions, cfg monitor.Config) bool {
	if !warmEnabled() || o.timing || cfg.CPUs != 1 || o.spawnedRoot != "" || o.spawnedEnv != "" || o.spawnedExe != "" || len(cfg.Inherited) > 0 ||
		len(cfg.Publish) > 0 || cfg.Network != "" || cfg.Hostname != "" || len(cfg.Hosts) > 0 { // a warm VM's network and names are the server's
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
	req := r.encode()
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
		dieOf(unix.SIGPIPE)
		status = 128 + int(unix.SIGPIPE)
	}
	return status, true
}

// The context a warm server's claimant must share, and a client's server: this
// process's own.
var ourContext []byte
