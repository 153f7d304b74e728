package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/host/instance"
	"github.com/pithvm/pith/host/monitor"
	"github.com/pithvm/pith/host/network"
)

// detachOptions are pith run's flags for a unikernel that runs in the background.
type detachOptions struct {
	on      bool
	name    string
	rm      bool
	restart string
}

func (d *detachOptions) register(c *cobra.Command) {
	c.Flags().BoolVarP(&d.on, "detach", "d", false, "run in the background and print the unikernel's ID")
	c.Flags().StringVar(&d.name, "name", "", "with -d: the unikernel's name (default: a random one)")
	c.Flags().BoolVar(&d.rm, "rm", false, "remove the unikernel's state when it exits")
	c.Flags().StringVar(&d.restart, "restart", "no", "with -d: restart policy: no, on-failure[:MAX], always")
}

// wanted reports whether the run is one for runDetached: -d, or a flag that needs it.
func (d *detachOptions) wanted(c *cobra.Command) bool {
	return d.on || c.Flags().Changed("name") || c.Flags().Changed("restart")
}

// parseRestart reads Docker's --restart grammar.
func parseRestart(s string) (instance.RestartPolicy, error) {
	name, max, hasMax := strings.Cut(s, ":")
	p := instance.RestartPolicy{Name: name}
	switch {
	case name == "no" || name == "always" || name == "unless-stopped":
		if hasMax {
			return p, fmt.Errorf("--restart %s: only on-failure takes a maximum count", s)
		}
		if name == "unless-stopped" {
			p.Name = "always" // the same with no daemon to restart anything at boot
		}
	case name == "on-failure":
		if hasMax {
			n, err := strconv.Atoi(max)
			if err != nil || n < 0 {
				return p, fmt.Errorf("--restart %s: the maximum is a count of restarts, as on-failure:3", s)
			}
			p.MaxRetries = n
		}
	default:
		return p, fmt.Errorf("--restart %s: use no, on-failure[:MAX] or always", s)
	}
	return p, nil
}

// runDetached is pith run -d: it makes the unikernel's state directory, starts its
// monitor (pith itself, detached) and prints its ID once the guest has started.
func runDetached(c *cobra.Command, o *runOptions, args []string) error {
	if !o.detach.on {
		return errors.New("--name and --restart go with -d: a unikernel run in the foreground keeps no state")
	}
	policy, err := parseRestart(o.detach.restart)
	if err != nil {
		return err
	}
	if o.detach.rm && policy.Name != "no" {
		return errors.New("--rm and --restart: a unikernel removed when it exits cannot be restarted; give one of them")
	}
	store, err := instance.Open(instance.RuntimeDir())
	if err != nil {
		return err
	}
	dir, err := os.Getwd()
	if err != nil {
		return err
	}
	cfg := instance.Config{Name: o.detach.name, RunArgs: runFlags(c), App: args[0], AppArgs: args[1:],
		Dir: dir, Env: os.Environ(), Ports: o.publish, AutoRemove: o.detach.rm, Restart: policy}
	inst, lk, err := store.Create(cfg)
	if err != nil {
		return err
	}
	if imageArg(args[0]) {
		// Recorded before the monitor starts, so that no rmi in between takes the image
		// away; one the store lacks is pulled, and recorded, by the monitor.
		if images, err := openImages(); err == nil {
			if img, _, err := images.Resolve(args[0]); err == nil {
				if d, err := img.Digest(); err == nil {
					inst.SetImage(d.Hex)
				}
			}
		}
	}
	if err := startMonitor(store, inst, lk); err != nil {
		if lk, lerr := inst.TryLock(); lerr == nil {
			store.Remove(inst) // the user never saw its ID: nothing to keep
			lk.Release()
		}
		return err
	}
	fmt.Println(inst.ID)
	return nil
}

// runFlags are the flags given to pith run, as --flag=value, less the ones runDetached
// keeps in the configuration itself.
func runFlags(c *cobra.Command) []string {
	var out []string
	c.Flags().Visit(func(f *pflag.Flag) {
		switch f.Name {
		case "detach", "name", "rm", "restart":
			return
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			for _, v := range sv.GetSlice() {
				out = append(out, "--"+f.Name+"="+v)
			}
			return
		}
		out = append(out, "--"+f.Name+"="+f.Value.String())
	})
	return out
}

// startMonitor starts the unikernel's monitor process: pith run, detached (a session of
// its own, standard input /dev/null, its own messages to monitor.log), given lk, and waits
// until it has started the guest or says why it could not.
func startMonitor(store *instance.Store, inst *instance.Instance, lk *instance.Lock) error {
	defer lk.Release()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	out, err := os.OpenFile(filepath.Join(inst.Dir, "monitor.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		w.Close()
		return err
	}
	cmd := exec.Command(exe, monitorCommand, inst.ID)
	cmd.Env = append(append([]string(nil), inst.Config.Env...), "PITH_RUNTIME="+store.Root)
	cmd.Dir = inst.Config.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = []*os.File{w, lk.File()} // descriptors 3 and 4
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	out.Close()
	if err != nil {
		return fmt.Errorf("starting the monitor process: %v", err)
	}
	lk.Release() // the monitor holds it now
	msg, _ := io.ReadAll(r)
	if string(msg) == readyOK {
		cmd.Process.Release()
		return nil
	}
	cmd.Wait()
	if len(msg) == 0 {
		return fmt.Errorf("the monitor process ended before it started the guest; its output is in %s", filepath.Join(inst.Dir, "monitor.log"))
	}
	return errors.New(strings.TrimPrefix(string(msg), readyErr))
}

// The monitor's word to startMonitor on descriptor 3: readyOK, or readyErr and the error.
const (
	readyOK  = "ok"
	readyErr = "error: "
)

// monitorCommand is the hidden command a detached unikernel's monitor process runs.
const monitorCommand = "_monitor"

func newMonitorCommand() *cobra.Command {
	return &cobra.Command{
		Use:    monitorCommand + " ID",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE:   func(_ *cobra.Command, args []string) error { return runMonitor(args[0]) },
	}
}

// session is the detached unikernel this process is the monitor of (pith _monitor); nil
// in every other pith process.
var session *monitorSession

// monitorSession runs a detached unikernel: its guest's console goes to its log, its
// state is kept, and its restart policy applied.
type monitorSession struct {
	store *instance.Store
	inst  *instance.Instance
	lock  *instance.Lock
	logs  *instance.LogWriter
	ready *os.File // nil once told

	mu      sync.Mutex
	running *monitor.Prepared // the guest now running; nil between runs
}

func runMonitor(id string) error {
	unix.CloseOnExec(3)
	s := &monitorSession{ready: os.NewFile(3, "ready"), lock: instance.AdoptLock(4, "lock")}
	var err error
	if s.store, err = instance.Open(instance.RuntimeDir()); err != nil {
		s.tell(err)
		return err
	}
	if s.inst, err = s.store.Get(id); err != nil {
		s.tell(err)
		return err
	}
	s.logs = instance.NewLogWriter(s.inst.LogPath(), instance.LogMaxSize, instance.LogFiles)
	defer s.logs.Close()
	session = s
	c := newRunCommand()
	c.SilenceErrors, c.SilenceUsage = true, true
	c.SetArgs(append(append(append([]string(nil), s.inst.Config.RunArgs...), "--", s.inst.Config.App), s.inst.Config.AppArgs...))
	err = c.Execute()
	if s.ready != nil && err == nil {
		err = errors.New("internal error: pith run ended without starting the guest")
	}
	if s.ready != nil { // pith run refused before the guest started
		s.tell(err)
		st := s.inst.State
		st.Status, st.ExitCode, st.Pid, st.Error, st.FinishedAt = instance.StatusExited, exitPithError, 0, err.Error(), time.Now()
		s.inst.SetState(st)
	}
	return err
}

// tell gives startMonitor the outcome of the start: nil, started.
func (s *monitorSession) tell(err error) {
	if s.ready == nil {
		return
	}
	msg := readyOK
	if err != nil {
		msg = readyErr + err.Error()
	}
	s.ready.WriteString(msg) // startMonitor may be gone (killed): nothing to do then
	s.ready.Close()
	s.ready = nil
}

// run runs the guest cfg describes, as pith run does in the foreground, and again as its
// restart policy says, with Docker's backoff: 100 ms doubling up to a minute, back to
// 100 ms after a run of 10 s.
func (s *monitorSession) run(cfg monitor.Config) error {
	cfg.Stdout, cfg.Stderr = s.logs.Stream("stdout"), s.logs.Stream("stderr")
	cfg.DeferTeardown = false // this process lives on: it tears its VMs down itself
	cfg.Interactive = true
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGALRM)
	cfg.Signals = sigs
	inst := s.inst
	if ln, err := net.Listen("unix", statsSocket(inst)); err == nil {
		go s.serveStats(ln)
		defer ln.Close()
	}
	inst.TakeStopRequest() // one left from a run before
	policy := inst.Config.Restart
	st := inst.State
	st.Error, st.RestartCount = "", 0
	backoff := 100 * time.Millisecond
	for {
		st.Status, st.Pid, st.StartedAt = instance.StatusRunning, os.Getpid(), time.Now()
		st.Address = guestAddress(cfg)
		code, msg := 0, ""
		p, err := monitor.Prepare(cfg)
		if err == nil {
			st.Ports = nil
			for _, pp := range p.Published() {
				st.Ports = append(st.Ports, fmt.Sprintf("%s->%d/%s", netip.AddrPortFrom(pp.HostIP, pp.HostPort), pp.GuestPort, pp.Proto))
			}
			inst.SetState(st)
			s.tell(nil)
			s.setRunning(p)
			// Starting a guest allocates what an idle monitor never needs again: return
			// it to the host at once rather than leave it to the runtime's background
			// scavenger, which gives it back a little at a time, waking the process.
			// Measured with the watchdog's longer interval (docs/lifecycle.md, "The
			// idle cost"): a third of the idle host CPU, 1 MiB less PSS.
			debug.FreeOSMemory()
			var res *monitor.Result
			res, err = p.Run(cfg)
			s.setRunning(nil)
			p.Close()
			if err == nil {
				code = res.ExitCode
			}
		}
		if err != nil {
			if s.ready != nil {
				return err // runMonitor reports it
			}
			code, msg = exitPithError, err.Error()
			fmt.Fprintf(cfg.Stderr, "pith: %v\n", err)
		}
		st.Status, st.ExitCode, st.Error, st.FinishedAt = instance.StatusExited, code, msg, time.Now()
		restart := !inst.TakeStopRequest() && (policy.Name == "always" ||
			policy.Name == "on-failure" && code != 0 && (policy.MaxRetries == 0 || st.RestartCount < policy.MaxRetries))
		if !restart {
			break
		}
		if st.FinishedAt.Sub(st.StartedAt) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		st.Status = instance.StatusRestarting
		inst.SetState(st)
		select {
		case <-time.After(backoff):
		case <-sigs: // stopped (or killed) while it waits to restart
			restart = false
		}
		if !restart {
			st.Status = instance.StatusExited
			break
		}
		backoff = min(2*backoff, time.Minute)
		st.RestartCount++
	}
	st.Pid = 0
	s.logs.Close()
	if inst.Config.AutoRemove {
		inst.SetState(st) // for pith wait, which holds the removal until it has read it
		inst.AwaitWaiters(5 * time.Second)
		s.store.Remove(inst)
	} else {
		inst.SetState(st)
	}
	if st.ExitCode != 0 {
		return statusError(st.ExitCode)
	}
	return nil
}

func (s *monitorSession) setRunning(p *monitor.Prepared) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = p
}

// statsSocket is where a unikernel's monitor answers pith stats: a socket in the abstract
// namespace, which needs no file (a state directory's path can be longer than a socket
// address takes) and goes with the process however it ends.
func statsSocket(inst *instance.Instance) string { return "@pith-stats-" + inst.ID }

// serveStats answers each connection to ln with the guest's monitor.LiveStats as JSON,
// to processes of this user only.
func (s *monitorSession) serveStats(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		if peerUID(conn) == os.Getuid() {
			s.mu.Lock()
			var ls monitor.LiveStats
			if s.running != nil {
				ls = s.running.Live()
			}
			s.mu.Unlock()
			json.NewEncoder(conn).Encode(ls)
		}
		conn.Close()
	}
}

// peerUID is the user of the process at conn's other end (-1 if unknown).
func peerUID(conn net.Conn) int {
	uid := -1
	if raw, err := conn.(*net.UnixConn).SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) {
			if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
				uid = int(cred.Uid)
			}
		})
	}
	return uid
}

// guestAddress is the guest's own IP address on its network, for ps and inspect.
func guestAddress(cfg monitor.Config) string {
	switch cfg.Network {
	case "none":
		return ""
	case "tap":
		return cfg.Numbering.Address.Addr().String()
	}
	return network.GuestIP.String()
}
