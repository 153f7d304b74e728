// Package shim is containerd's runtime v2 shim for pith (io.containerd.pith.v2): each
// container is a unikernel, run by a pith monitor process the shim starts and waits for.
package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/protobuf"
	ptypes "github.com/containerd/containerd/protobuf/types"
	"github.com/containerd/containerd/runtime"
	"github.com/containerd/containerd/runtime/v2/shim"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/host/instance"
	"github.com/pithvm/pith/host/program"
)

// RuntimeName is the runtime containerd knows the shim by (ctr run --runtime).
const RuntimeName = "io.containerd.pith.v2"

// containerTypeAnnotation is how containerd's CRI marks a pod's sandbox container.
const containerTypeAnnotation = "io.kubernetes.cri.container-type"

// Files the shim keeps in the container's bundle directory.
const (
	pidFile    = "pith.pid"    // the monitor's (or pause process's) PID and start time, for a cleanup after the shim died
	reportFile = "pith.report" // how the guest ended (instance.Report)
)

var empty = &ptypes.Empty{}

// service is the task service of one container: its shim serves that container alone.
type service struct {
	ctx       context.Context
	publisher shim.Publisher
	shutdown  func()

	eventsMu sync.Mutex
	events   chan any // nil once the shim shuts down

	mu sync.Mutex
	c  *container // nil before create and after delete
}

// container is the one container a shim runs.
type container struct {
	id, bundle string
	rootfs     string // the mounted root filesystem
	mounted    bool
	launch     *launch
	stdio      stdio
	// sandbox: a pod's sandbox container (CRI's pause container). It runs no unikernel:
	// a pause process of the shim's holds the pod's network namespace, where the pod's
	// containers find it (/proc/PID/ns/net) and take over its link.
	sandbox bool

	status     task.Status
	cmd        *exec.Cmd
	pid        int
	io         *taskIO
	exitStatus uint32
	exitedAt   time.Time
	exited     chan struct{} // closed once the monitor has ended and exitStatus is set
	network    *podNetwork   // the tap of a pod network, removed at delete
}

// New makes the shim's task service; containerd's shim library calls it for every
// action (start, delete and serving), so it does nothing that could fail.
func New(ctx context.Context, id string, publisher shim.Publisher, shutdown func()) (shim.Shim, error) {
	s := &service{ctx: ctx, publisher: publisher, shutdown: shutdown, events: make(chan any, 128)}
	go s.forward(s.events)
	if sd, ok := ctx.(shutdownService); ok {
		// The library waits for the publisher to close before the shim exits.
		sd.RegisterCallback(func(context.Context) error {
			s.eventsMu.Lock()
			close(s.events)
			s.events = nil
			s.eventsMu.Unlock()
			return nil
		})
	}
	return s, nil
}

// shutdownService is the part of the library's shutdown service (the context it gives
// New) that runs a function as the shim shuts down.
type shutdownService interface {
	RegisterCallback(func(context.Context) error)
}

// publish queues an event for containerd.
func (s *service) publish(e any) {
	s.eventsMu.Lock()
	defer s.eventsMu.Unlock()
	if s.events != nil {
		s.events <- e
	}
}

// forward publishes the service's events to containerd in the order they happened.
func (s *service) forward(events <-chan any) {
	ns, _ := namespaces.Namespace(s.ctx)
	ctx := namespaces.WithNamespace(context.Background(), ns)
	for e := range events {
		if err := s.publisher.Publish(ctx, topic(e), e); err != nil {
			log.G(ctx).WithError(err).Error("publishing an event")
		}
	}
	s.publisher.Close()
}

func topic(e any) string {
	switch e.(type) {
	case *eventstypes.TaskCreate:
		return runtime.TaskCreateEventTopic
	case *eventstypes.TaskStart:
		return runtime.TaskStartEventTopic
	case *eventstypes.TaskOOM:
		return runtime.TaskOOMEventTopic
	case *eventstypes.TaskExit:
		return runtime.TaskExitEventTopic
	case *eventstypes.TaskDelete:
		return runtime.TaskDeleteEventTopic
	case *eventstypes.TaskPaused:
		return runtime.TaskPausedEventTopic
	case *eventstypes.TaskResumed:
		return runtime.TaskResumedEventTopic
	}
	return runtime.TaskUnknownTopic
}

// StartShim starts the shim that will serve the container (this program again, without
// the start action) on a socket of its own, and returns the socket's address.
func (s *service) StartShim(ctx context.Context, opts shim.StartOpts) (string, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return "", err
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	address, err := shim.SocketAddress(ctx, opts.Address, opts.ID)
	if err != nil {
		return "", err
	}
	socket, err := shim.NewSocket(address)
	if err != nil {
		if !shim.SocketEaddrinuse(err) {
			return "", fmt.Errorf("the shim's socket: %w", err)
		}
		if shim.CanConnect(address) {
			// Already served: containerd asks again after its own restart.
			return address, shim.WriteAddress("address", address)
		}
		if err := shim.RemoveSocket(address); err != nil {
			return "", err
		}
		if socket, err = shim.NewSocket(address); err != nil {
			return "", err
		}
	}
	f, err := socket.File()
	socket.SetUnlinkOnClose(false) // the path is the served shim's now
	socket.Close()
	if err != nil {
		return "", err
	}
	defer f.Close()
	args := []string{"-namespace", ns, "-id", opts.ID, "-address", opts.Address}
	if opts.Debug {
		args = append(args, "-debug")
	}
	cmd := exec.Command(self, args...)
	cmd.Dir, _ = os.Getwd()
	cmd.ExtraFiles = []*os.File{f} // descriptor 3: the library serves on it
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		shim.RemoveSocket(address)
		return "", err
	}
	go cmd.Wait()
	if err := shim.WriteAddress("address", address); err != nil {
		cmd.Process.Kill()
		return "", err
	}
	if err := shim.AdjustOOMScore(cmd.Process.Pid); err != nil {
		log.G(ctx).WithError(err).Warn("adjusting the shim's OOM score")
	}
	return address, nil
}

// Cleanup is the delete action: containerd found the shim gone. It ends the monitor the
// shim left, if any, and unmounts the container's root filesystem.
func (s *service) Cleanup(ctx context.Context) (*taskAPI.DeleteResponse, error) {
	bundle, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	pid := 0
	if b, err := os.ReadFile(filepath.Join(bundle, pidFile)); err == nil {
		var started uint64
		fmt.Sscan(string(b), &pid, &started)
		if pid > 0 && startTime(pid) == started {
			unix.Kill(pid, unix.SIGKILL)
			// The mounts and the cgroup stay busy until it is gone.
			for deadline := time.Now().Add(5 * time.Second); startTime(pid) == started && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	rootfs, cgroup := filepath.Join(bundle, "rootfs"), ""
	if b, err := os.ReadFile(filepath.Join(bundle, "config.json")); err == nil {
		var spec specs.Spec
		if json.Unmarshal(b, &spec) == nil {
			if spec.Root != nil && spec.Root.Path != "" {
				rootfs = spec.Root.Path
				if !filepath.IsAbs(rootfs) {
					rootfs = filepath.Join(bundle, rootfs)
				}
			}
			if spec.Linux != nil {
				cgroup = spec.Linux.CgroupsPath
			}
		}
	}
	if err := mount.UnmountAll(rootfs, 0); err != nil {
		log.G(ctx).WithError(err).Warn("unmounting the root filesystem")
	}
	removeCgroup(cgroup)
	removePodNetwork(bundle)
	return &taskAPI.DeleteResponse{Pid: uint32(pid), ExitStatus: 128 + uint32(unix.SIGKILL), ExitedAt: protobuf.ToTimestamp(time.Now())}, nil
}

// startTime is when process pid started (clock ticks after boot), 0 if there is no such
// process: with its PID, it names the process, which a PID alone, reused, would not.
func startTime(pid int) uint64 {
	f, err := procStat(pid)
	if err != nil {
		return 0
	}
	t, _ := strconv.ParseUint(f[19], 10, 64)
	return t
}

// procStat is the fields of /proc/PID/stat after the command name (which is in
// parentheses and may hold spaces): f[0] is the state, f[11] utime, f[19] starttime.
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 22 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return f, nil
}

// locked takes the service's lock and finds container id, for a request about process
// execID (only the container's own, ""). It returns with the lock held, or with an error
// and the lock free.
func (s *service) locked(id, execID string) (*container, error) {
	if err := noExec(execID); err != nil {
		return nil, err
	}
	s.mu.Lock()
	c, err := s.get(id)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	return c, nil
}

func (s *service) get(id string) (*container, error) {
	if s.c == nil || s.c.id != id {
		return nil, errdefs.ToGRPCf(errdefs.ErrNotFound, "container %s", id)
	}
	return s.c, nil
}

// noExec refuses anything about a process other than the container's own.
func noExec(execID string) error {
	if execID != "" {
		return errdefs.ToGRPCf(errdefs.ErrNotFound, "process %s: a unikernel runs one program, and exec is not supported", execID)
	}
	return nil
}

// Create mounts the container's root filesystem and checks that pith can run what its
// spec asks for; the unikernel boots at Start.
func (s *service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (_ *taskAPI.CreateTaskResponse, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != nil {
		return nil, errdefs.ToGRPCf(errdefs.ErrAlreadyExists, "this shim already runs container %s", s.c.id)
	}
	if r.Checkpoint != "" || r.ParentCheckpoint != "" {
		return nil, errdefs.ToGRPCf(errdefs.ErrNotImplemented, "pith cannot restore a checkpoint")
	}
	b, err := os.ReadFile(filepath.Join(r.Bundle, "config.json"))
	if err != nil {
		return nil, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("the bundle's config.json: %w", err)
	}
	rootfs := filepath.Join(r.Bundle, "rootfs")
	if spec.Root != nil && spec.Root.Path != "" {
		rootfs = spec.Root.Path
		if !filepath.IsAbs(rootfs) {
			rootfs = filepath.Join(r.Bundle, rootfs)
		}
	}
	c := &container{id: r.ID, bundle: r.Bundle, rootfs: rootfs, status: task.Status_CREATED, exited: make(chan struct{}),
		stdio:   stdio{stdin: r.Stdin, stdout: r.Stdout, stderr: r.Stderr, terminal: r.Terminal},
		sandbox: spec.Annotations[containerTypeAnnotation] == "sandbox"}
	if c.sandbox {
		c.launch = sandboxLaunch(&spec)
	} else if c.launch, err = fromSpec(&spec, r.Bundle, rootfs, filepath.Join(r.Bundle, reportFile)); err != nil {
		return nil, errdefs.ToGRPCf(errdefs.ErrInvalidArgument, "%v", err)
	}
	if err := c.stdio.check(); err != nil {
		return nil, errdefs.ToGRPCf(errdefs.ErrInvalidArgument, "%v", err)
	}
	var mounts []mount.Mount
	for _, m := range r.Rootfs {
		mounts = append(mounts, mount.Mount{Type: m.Type, Source: m.Source, Options: m.Options})
	}
	if len(mounts) > 0 {
		if err := os.MkdirAll(rootfs, 0o711); err != nil {
			return nil, err
		}
		if err := mount.All(mounts, rootfs); err != nil {
			return nil, fmt.Errorf("mounting the root filesystem: %w", err)
		}
		c.mounted = true
		defer func() {
			if err != nil {
				mount.UnmountAll(rootfs, 0)
			}
		}()
	}
	if !c.sandbox {
		if err := checkProgram(&spec, rootfs); err != nil {
			return nil, errdefs.ToGRPCf(errdefs.ErrInvalidArgument, "%v", err)
		}
	}
	s.c = c
	s.publish(&eventstypes.TaskCreate{ContainerID: r.ID, Bundle: r.Bundle, Rootfs: r.Rootfs,
		IO: &eventstypes.TaskIO{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal}})
	return &taskAPI.CreateTaskResponse{}, nil
}

// checkProgram refuses, at create, a program pith could not start: missing from the root
// filesystem, dynamically linked without its dynamic linker there, not an x86-64
// executable.
func checkProgram(spec *specs.Spec, rootfs string) error {
	p := spec.Process
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	host, guest, err := program.Find(rootfs, p.Args[0], cwd, p.Env)
	if err != nil {
		return fmt.Errorf("the container's program %s is not in its root filesystem", p.Args[0])
	}
	return program.CheckAs(host, guest, rootfs)
}

// pithPath is the pith binary the shim runs: the one beside the shim, else pith on PATH.
func pithPath() (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "pith")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("pith")
	if err != nil {
		return "", errors.New("pith is neither beside containerd-shim-pith-v2 nor on PATH: install the two together")
	}
	return p, nil
}

// Start boots the container's unikernel: a pith monitor process, with the container's
// standard streams.
func (s *service) Start(ctx context.Context, r *taskAPI.StartRequest) (*taskAPI.StartResponse, error) {
	c, err := s.locked(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if c.status != task.Status_CREATED {
		return nil, errdefs.ToGRPCf(errdefs.ErrFailedPrecondition, "container %s is %s, not created", r.ID, c.status)
	}
	bin := pithPath
	if c.sandbox {
		bin = os.Executable // the shim itself, as the pod's pause process
	}
	pith, err := bin()
	if err != nil {
		return nil, err
	}
	args := c.launch.args
	if c.launch.netns != "" && !c.sandbox {
		n, err := setUpPodNetwork(c.launch.netns, c.bundle)
		if err != nil {
			return nil, fmt.Errorf("the pod network: %w", err)
		}
		c.network = n
		args = n.flags(args, c.launch.dns)
	}
	cmd := exec.Command(pith, args...)
	cmd.Dir = c.bundle
	cmd.Env = monitorEnv()
	// No Pdeathsig: it would fire when the thread that started the monitor ends (inNetns's
	// does), and a shim's death does not end its container: containerd's cleanup does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Not the request's context: ttrpc ends it when Start returns, and the FIFOs outlive it.
	tio, err := c.stdio.open(context.Background(), cmd)
	if err != nil {
		c.dropNetwork()
		return nil, err
	}
	cg, err := joinCgroup(c.launch, cmd)
	if err != nil {
		tio.Close()
		c.dropNetwork()
		return nil, err
	}
	switch {
	case c.network != nil:
		err = c.network.start(cmd)
	case c.sandbox && c.launch.netns != "":
		err = inNetns(c.launch.netns, cmd.Start)
	default:
		err = cmd.Start()
	}
	pid := 0
	if err == nil {
		pid = cmd.Process.Pid
	}
	if jerr := cg.started(pid); jerr != nil && err == nil {
		cmd.Process.Kill()
		cmd.Wait()
		err = jerr
	}
	tio.started()
	if err != nil {
		tio.Close()
		c.dropNetwork()
		return nil, fmt.Errorf("starting pith: %w", err)
	}
	// The monitor runs with the spec's OOM score, not the shim's (which is containerd's,
	// shielded): under memory pressure a guest goes as its QoS class says.
	os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", cmd.Process.Pid), []byte(strconv.Itoa(c.launch.oomScoreAdj)), 0)
	c.cmd, c.pid, c.io, c.status = cmd, cmd.Process.Pid, tio, task.Status_RUNNING
	os.WriteFile(filepath.Join(c.bundle, pidFile), []byte(fmt.Sprintf("%d %d", c.pid, startTime(c.pid))), 0o644)
	s.publish(&eventstypes.TaskStart{ContainerID: c.id, Pid: uint32(c.pid)})
	go s.wait(c)
	return &taskAPI.StartResponse{Pid: uint32(c.pid)}, nil
}

// monitorEnv is the environment of the pith monitor: the shim's (containerd's), less
// what would change how pith runs a guest behind the shim's back.
func monitorEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PITH_WARM=") {
			env = append(env, e)
		}
	}
	return env
}

// wait waits for the monitor to end, records how the guest ended and publishes it: an
// out-of-memory guest first as an OOM event, as a container the OOM killer ended.
func (s *service) wait(c *container) {
	c.cmd.Wait() // how it ended is in its ProcessState, or, better, its report
	// The output has all reached containerd before the exit does, unless a client stopped
	// reading it: then the exit waits 2 s at most, as runc's shim does.
	copied := make(chan struct{})
	go func() { c.io.Wait(); close(copied) }()
	select {
	case <-copied:
	case <-time.After(2 * time.Second):
	}
	c.io.Close()
	status := exitStatus(c.cmd.ProcessState)
	report, rerr := instance.ReadReport(filepath.Join(c.bundle, reportFile))
	if rerr == nil {
		status = uint32(report.ExitCode)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c.exitStatus, c.exitedAt, c.status = status, time.Now(), task.Status_STOPPED
	// Published before Wait returns, so before any Delete or Shutdown that follows it.
	if rerr == nil && report.OutOfMemory {
		s.publish(&eventstypes.TaskOOM{ContainerID: c.id})
	}
	s.publish(&eventstypes.TaskExit{ContainerID: c.id, ID: c.id, Pid: uint32(c.pid), ExitStatus: status,
		ExitedAt: protobuf.ToTimestamp(c.exitedAt)})
	close(c.exited)
}

// dropNetwork undoes the pod network of a container whose start failed.
func (c *container) dropNetwork() {
	if c.network != nil {
		c.network.remove()
		os.Remove(filepath.Join(c.bundle, networkFile))
		c.network = nil
	}
}

// exitStatus is a shell's status for how a process ended: its exit code, or 128+N for a
// death by signal N.
func exitStatus(ps *os.ProcessState) uint32 {
	if ps == nil {
		return 255
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + uint32(ws.Signal())
	}
	return uint32(ps.ExitCode())
}

// Delete removes a container that is not running: its root filesystem is unmounted and
// its pod network's tap removed.
func (s *service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	c, err := s.locked(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	switch c.status {
	case task.Status_RUNNING, task.Status_PAUSED:
		return nil, errdefs.ToGRPCf(errdefs.ErrFailedPrecondition, "container %s is running: stop it first (kill)", r.ID)
	case task.Status_CREATED:
		c.exitedAt, c.status = time.Now(), task.Status_STOPPED
		close(c.exited)
	}
	if c.mounted {
		if err := mount.UnmountAll(c.rootfs, 0); err != nil {
			return nil, fmt.Errorf("unmounting the root filesystem: %w", err)
		}
	}
	if c.network != nil {
		c.network.remove()
		os.Remove(filepath.Join(c.bundle, networkFile))
	}
	removeCgroup(c.launch.cgroup)
	os.Remove(filepath.Join(c.bundle, pidFile))
	os.Remove(filepath.Join(c.bundle, reportFile))
	s.c = nil
	s.publish(&eventstypes.TaskDelete{ContainerID: c.id, ID: c.id, Pid: uint32(c.pid), ExitStatus: c.exitStatus,
		ExitedAt: protobuf.ToTimestamp(c.exitedAt)})
	return &taskAPI.DeleteResponse{Pid: uint32(c.pid), ExitStatus: c.exitStatus, ExitedAt: protobuf.ToTimestamp(c.exitedAt)}, nil
}

// Kill sends the monitor a signal; pith passes INT, TERM, HUP, QUIT, USR1 and USR2 on to
// the app, and any other that ends a process ends the unikernel.
func (s *service) Kill(ctx context.Context, r *taskAPI.KillRequest) (*ptypes.Empty, error) {
	c, err := s.locked(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	switch c.status {
	case task.Status_CREATED:
		// Nothing runs yet: the container ends as if killed.
		c.exitStatus, c.exitedAt, c.status = 128+r.Signal, time.Now(), task.Status_STOPPED
		close(c.exited)
		s.publish(&eventstypes.TaskExit{ContainerID: c.id, ID: c.id, ExitStatus: c.exitStatus, ExitedAt: protobuf.ToTimestamp(c.exitedAt)})
		return empty, nil
	case task.Status_STOPPED:
		return nil, errdefs.ToGRPCf(errdefs.ErrNotFound, "container %s: its unikernel has already ended", r.ID)
	}
	sig := unix.Signal(r.Signal)
	if c.status == task.Status_PAUSED && sig != unix.SIGKILL {
		// A stopped monitor would take the signal only once resumed, as a frozen
		// container's process does.
		log.G(ctx).Infof("signal %d for a paused container waits for its resume", r.Signal)
	}
	// Through the process, not its PID: once reaped, it cannot reach another process.
	if err := c.cmd.Process.Signal(sig); errors.Is(err, os.ErrProcessDone) {
		return nil, errdefs.ToGRPCf(errdefs.ErrNotFound, "container %s: its unikernel has already ended", r.ID)
	} else if err != nil {
		return nil, err
	}
	return empty, nil
}

// Wait waits for the container's unikernel to end.
func (s *service) Wait(ctx context.Context, r *taskAPI.WaitRequest) (*taskAPI.WaitResponse, error) {
	c, err := s.locked(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	s.mu.Unlock()
	select {
	case <-c.exited:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return &taskAPI.WaitResponse{ExitStatus: c.exitStatus, ExitedAt: protobuf.ToTimestamp(c.exitedAt)}, nil
}

// State reports the container's state.
func (s *service) State(ctx context.Context, r *taskAPI.StateRequest) (*taskAPI.StateResponse, error) {
	c, err := s.locked(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return &taskAPI.StateResponse{ID: c.id, Bundle: c.bundle, Pid: uint32(c.pid), Status: c.status,
		Stdin: c.stdio.stdin, Stdout: c.stdio.stdout, Stderr: c.stdio.stderr, Terminal: c.stdio.terminal,
		ExitStatus: c.exitStatus, ExitedAt: protobuf.ToTimestamp(c.exitedAt)}, nil
}

// Pids lists the container's processes: its monitor, whose guest is the whole container.
func (s *service) Pids(ctx context.Context, r *taskAPI.PidsRequest) (*taskAPI.PidsResponse, error) {
	c, err := s.locked(r.ID, "")
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var ps []*task.ProcessInfo
	if c.status == task.Status_RUNNING || c.status == task.Status_PAUSED {
		ps = append(ps, &task.ProcessInfo{Pid: uint32(c.pid)})
	}
	return &taskAPI.PidsResponse{Processes: ps}, nil
}

// Pause stops the monitor's threads, and with them the guest's vCPUs, as the cgroup
// freezer stops a container's processes; Resume continues them.
func (s *service) Pause(ctx context.Context, r *taskAPI.PauseRequest) (*ptypes.Empty, error) {
	return s.freeze(r.ID, true)
}

func (s *service) Resume(ctx context.Context, r *taskAPI.ResumeRequest) (*ptypes.Empty, error) {
	return s.freeze(r.ID, false)
}

func (s *service) freeze(id string, pause bool) (*ptypes.Empty, error) {
	c, err := s.locked(id, "")
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	from, to, sig := task.Status_RUNNING, task.Status_PAUSED, unix.SIGSTOP
	var event any = &eventstypes.TaskPaused{ContainerID: id}
	if !pause {
		from, to, sig = task.Status_PAUSED, task.Status_RUNNING, unix.SIGCONT
		event = &eventstypes.TaskResumed{ContainerID: id}
	}
	if c.status != from {
		return nil, errdefs.ToGRPCf(errdefs.ErrFailedPrecondition, "container %s is %s, not %s", id, c.status, from)
	}
	// The monitor's process group: the programs its guest started (each a pith of its
	// own) stop and continue with it.
	if err := unix.Kill(-c.pid, sig); err != nil {
		return nil, err
	}
	c.status = to
	s.publish(event)
	return empty, nil
}

// Exec is refused: a unikernel runs one program, and no other process can join it.
func (s *service) Exec(ctx context.Context, r *taskAPI.ExecProcessRequest) (*ptypes.Empty, error) {
	return nil, errdefs.ToGRPCf(errdefs.ErrNotImplemented, "exec is not supported in a unikernel: it runs one program, and nothing else can be started inside it")
}

// Checkpoint is refused.
func (s *service) Checkpoint(ctx context.Context, r *taskAPI.CheckpointTaskRequest) (*ptypes.Empty, error) {
	return nil, errdefs.ToGRPCf(errdefs.ErrNotImplemented, "pith cannot checkpoint a unikernel")
}

// Update is refused: a guest's memory and vCPUs are fixed when it boots.
func (s *service) Update(ctx context.Context, r *taskAPI.UpdateTaskRequest) (*ptypes.Empty, error) {
	return nil, errdefs.ToGRPCf(errdefs.ErrNotImplemented, "a unikernel's memory and vCPUs are fixed when it boots: recreate the container to change them")
}

// ResizePty resizes the container's terminal.
func (s *service) ResizePty(ctx context.Context, r *taskAPI.ResizePtyRequest) (*ptypes.Empty, error) {
	c, err := s.locked(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if c.io == nil || c.io.console == nil {
		return nil, errdefs.ToGRPCf(errdefs.ErrFailedPrecondition, "container %s has no terminal", r.ID)
	}
	return empty, c.io.resize(r.Width, r.Height)
}

// CloseIO closes the container's standard input.
func (s *service) CloseIO(ctx context.Context, r *taskAPI.CloseIORequest) (*ptypes.Empty, error) {
	c, err := s.locked(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if c.io != nil && r.Stdin {
		c.io.closeStdin()
	}
	return empty, nil
}

// Connect tells containerd the shim's and the container's PIDs.
func (s *service) Connect(ctx context.Context, r *taskAPI.ConnectRequest) (*taskAPI.ConnectResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pid uint32
	if s.c != nil {
		pid = uint32(s.c.pid)
	}
	return &taskAPI.ConnectResponse{ShimPid: uint32(os.Getpid()), TaskPid: pid}, nil
}

// Shutdown ends the shim once its container is deleted.
func (s *service) Shutdown(ctx context.Context, r *taskAPI.ShutdownRequest) (*ptypes.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != nil {
		return empty, nil
	}
	s.shutdown()
	return empty, nil
}
