package cli

// Warm start: with PITH_WARM=1, `pith run` hands its app to a VM booted in advance, and
// saves the boot (tier 0, tier 1's Go runtime: ~6 ms of the ~16 a cold run takes on
// kvm-pvm, docs/boot-time.md).
//
// A warm VM is a `pith warm-serve` process: a monitor that has booted a guest up to
// where tier 1 waits for its app, listening on a Unix socket named after its
// configuration (kernel and pith binaries, memory, vCPUs). A run claims one by renaming
// that socket (only one rename can succeed), connects, and sends its command line,
// environment, working directory and standard streams (SCM_RIGHTS). The server becomes
// the run: it takes those streams as its own, runs the command as `pith run` would and
// sends back the exit status; signals the client gets are forwarded to it. A claimed
// server starts its successor at once; the first run of a configuration starts one
// while it boots its own VM. An unclaimed server exits after PITH_WARM_IDLE (default
// 10m). Runs the warm path cannot serve exactly (--timing, a program started from
// inside a guest, an app too large for the window kept for it) boot as usual.

import (
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

// warmRequest is what a run sends the warm server it claimed.
type warmRequest struct {
	Args []string // pith's command line after the program name
	Env  []string
	Dir  string
}

// Bytes the server sends: warmRunning once it has taken the run (before that, the
// client may still boot a VM of its own), then the exit status as 4 bytes.
const warmRunning = 'R'

// warmDir is where warm servers listen: private to this user.
func warmDir() (string, error) {
	base := os.Getenv("XDG_RUNTIME_DIR")
	if base == "" {
		base = os.TempDir()
	}
	dir := filepath.Join(base, fmt.Sprintf("pith-%d", os.Getuid()), "warm")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	for d := dir; d != base; d = filepath.Dir(d) {
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

// warmKey names a configuration: a warm VM serves only runs that would boot the same.
func warmKey(cfg monitor.Config) string {
	h := sha256.New()
	self, _ := os.Executable()
	for _, p := range []string{self, cfg.Kernel} {
		abs, _ := filepath.Abs(p)
		fmt.Fprintf(h, "%s\x00", abs)
		if fi, err := os.Stat(p); err == nil {
			st, _ := fi.Sys().(*syscall.Stat_t)
			fmt.Fprintf(h, "%d %d %d\x00", fi.Size(), fi.ModTime().UnixNano(), st.Ino)
		}
	}
	fmt.Fprintf(h, "%d %d %d", cfg.Memory, cfg.CPUs, cfg.Mode)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// warmFlags are the warm-serve flags that boot the same VM as cfg.
func warmFlags(cfg monitor.Config) []string {
	args := []string{"warm-serve", "-m", strconv.FormatUint(cfg.Memory, 10), "--cpus", strconv.Itoa(cfg.CPUs)}
	if cfg.Mode == monitor.ModeStandard {
		args = append(args, "--x86-standard")
	}
	return args
}

// startWarm starts a warm server for cfg in the background, detached from this run.
func startWarm(cfg monitor.Config) {
	self, err := os.Executable()
	if err != nil {
		return
	}
	kernel, _ := filepath.Abs(cfg.Kernel)
	null, err := os.Open(os.DevNull)
	if err != nil {
		return
	}
	defer null.Close()
	env := []string{"PITH_KERNEL=" + kernel}
	for _, k := range []string{"PITH_WARM_IDLE", "XDG_RUNTIME_DIR", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	syscall.ForkExec(self, append([]string{"pith"}, warmFlags(cfg)...), &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{null.Fd(), null.Fd(), null.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
}

// runWarm runs this command in a warm VM for cfg if one can be claimed. It reports
// whether it did; if not, nothing was used up and the caller boots its own.
func runWarm(cfg monitor.Config) (status int, ok bool) {
	dir, err := warmDir()
	if err != nil {
		return 0, false
	}
	key := warmKey(cfg)
	socks, _ := filepath.Glob(filepath.Join(dir, key+".*.sock"))
	for _, sock := range socks {
		claimed := fmt.Sprintf("%s.claimed-%d", sock, os.Getpid())
		if os.Rename(sock, claimed) != nil {
			continue // another run took it
		}
		status, ok := runClaimed(claimed)
		if ok {
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
	dir, _ := os.Getwd()
	req, err := json.Marshal(warmRequest{Args: os.Args[1:], Env: os.Environ(), Dir: dir})
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
	// for them starts a thread (~0.1-0.4 ms), so that happens while the server starts.
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
	return int(int32(binary.LittleEndian.Uint32(st[:]))), true
}

// The warm VM a warm-serve process runs its one command in, and the signals it caught.
var (
	warmVM      *monitor.Prepared
	warmSignals chan os.Signal
	warmConfig  monitor.Config
)

// runMonitor runs cfg in the warm VM if this process has one that fits, else boots.
func runMonitor(cfg monitor.Config) (*monitor.Result, error) {
	if vm := warmVM; vm != nil {
		warmVM = nil
		if cfg.App != "" && !cfg.Timing && sameFile(cfg.Kernel, warmConfig.Kernel) && cfg.Memory == warmConfig.Memory &&
			cfg.CPUs == warmConfig.CPUs && cfg.Mode == warmConfig.Mode {
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

// warmable reports whether this run may go to a warm VM: a plain run whose app fits the
// window a warm VM keeps for it. Programs started inside a guest name files by
// /proc/self/fd paths that only their own process can open.
func warmable(o *runOptions, cfg monitor.Config, app string) bool {
	if !warmEnabled() || warmVM != nil || o.timing || o.spawnedRoot != "" || o.spawnedEnv != "" || o.spawnedExe != "" {
		return false
	}
	fi, err := os.Stat(app)
	return err == nil && monitor.FitsWarm(cfg.Memory, uint64(fi.Size()))
}

func newWarmServeCommand() *cobra.Command {
	var f machineFlags
	c := &cobra.Command{
		Use:    "warm-serve",
		Short:  "Boot a VM and keep it for the next pith run (PITH_WARM=1)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE:   func(*cobra.Command, []string) error { return warmServe(&f) },
	}
	f.register(c)
	return c
}

// warmServe is a warm server's life: boot, wait to be claimed, run the claimant's command.
func warmServe(f *machineFlags) error {
	cfg, err := f.config()
	if err != nil {
		return err
	}
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
	sock := filepath.Join(dir, fmt.Sprintf("%s.%d.sock", warmKey(cfg), os.Getpid()))
	lfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Bind(lfd, &unix.SockaddrUnix{Name: sock}); err != nil {
		return err
	}
	defer os.Remove(sock)
	if err := unix.Listen(lfd, 4); err != nil {
		return err
	}
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
	var fd int
	select {
	case fd = <-accepted:
	case <-warmSignals:
	case <-vm.Ended():
	case <-time.After(idle):
	}
	unix.Close(lfd)
	if fd <= 0 {
		vm.Close()
		return nil
	}
	conn := os.NewFile(uintptr(fd), "warm client")
	status, err := serveClaim(conn, vm, cfg)
	if err != nil {
		vm.Close()
		return nil // the client boots its own VM: it saw no warmRunning
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
	// The successor boots now rather than during the run: on a host with few CPUs the
	// two would slow each other.
	startWarm(cfg)
	os.Exit(status)
	return nil
}

// serveClaim takes the claimant's request and standard streams and runs its command.
func serveClaim(conn *os.File, vm *monitor.Prepared, cfg monitor.Config) (int, error) {
	fd := int(conn.Fd())
	if cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED); err != nil || int(cred.Uid) != os.Getuid() {
		return 0, errors.New("a claim from another user")
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
		return 0, errors.New("bad claim")
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
	if err := json.Unmarshal(body, &req); err != nil || len(req.Args) == 0 || req.Args[0] != "run" {
		return 0, errors.New("bad claim")
	}
	// Become the claimant: its streams, directory and environment.
	for i, f := range fds {
		if err := unix.Dup3(f, i, 0); err != nil {
			return 0, err
		}
		unix.Close(f)
	}
	os.Stdin, os.Stdout, os.Stderr = os.NewFile(0, "/dev/stdin"), os.NewFile(1, "/dev/stdout"), os.NewFile(2, "/dev/stderr")
	if err := os.Chdir(req.Dir); err != nil {
		return 0, err
	}
	os.Clearenv()
	for _, e := range req.Env {
		if k, v, ok := strings.Cut(e, "="); ok {
			os.Setenv(k, v)
		}
	}
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
	return Main(req.Args), nil
}
