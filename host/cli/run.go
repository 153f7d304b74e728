package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/abi/fdspec"
	"github.com/pithvm/pith/host/instance"
	"github.com/pithvm/pith/host/monitor"
	"github.com/pithvm/pith/host/monitor/fileservice"
	"github.com/pithvm/pith/host/network"
	"github.com/pithvm/pith/host/program"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

type runOptions struct {
	machine  machineFlags
	volumes  []string
	envFile  []string
	timing   bool
	trace    bool
	workdir  string
	publish  []string
	net      string
	hostname string
	addHosts []string
	ip       string
	gateway  string
	mac      string
	dns      []string
	detach   detachOptions
	rootfs   string
	readOnly bool
	report   string // --report: a file for how the guest ended (Report)
	// Set by a guest starting another program (host/monitor/fileservice/spawn.go).
	spawnedRoot, spawnedArgv0, spawnedEnv, spawnedExe, spawnedFDs string
	spawnedUmask                                                  string    // octal: the starting guest's umask
	forked                                                        string    // the state of a guest copied at a fork (fileservice.Fork)
	image                                                         *imageRun // set by imageApp for pith run IMAGE
}

func newRunCommand() *cobra.Command {
	var o runOptions
	c := &cobra.Command{
		Use:   "run [flags] BINARY|IMAGE [ARGS...]",
		Short: "Run a static x86-64 Linux executable, or an image, as a unikernel",
		Long: `Run boots a unikernel that runs BINARY with ARGS, and exits with its status.
BINARY is a static x86-64 Linux executable (a Go program built with CGO_ENABLED=0, or any
other static one). Flags go before BINARY; everything after it is the app's.

IMAGE, an argument that is no file here, is an image in the local store (pulled if
missing): its files are the guest's read-only /, it runs its entrypoint (ARGS replace
its cmd), with its environment and working directory (-e and -w win).

With PITH_WARM=1 in the environment, a program run again is handed to a VM booted for
it in advance by the previous run (a background pith warm-serve process, which exits
after PITH_WARM_IDLE, default 10m, unused).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if o.detach.wanted(c) {
				return runDetached(c, &o, args)
			}
			return runRun(&o, args)
		},
	}
	c.Flags().SetInterspersed(false)
	o.machine.register(c)
	o.detach.register(c)
	c.Flags().StringArrayVar(&o.envFile, "env-file", nil, "read environment variables from a file (KEY=VALUE lines)")
	c.Flags().StringArrayVarP(&o.volumes, "volume", "v", nil, "show a host directory to the app: HOST[:GUEST][:ro|rw] (read-only by default)")
	c.Flags().Lookup("memory").DefValue = "2g"
	c.Flags().Set("memory", "2g")
	c.Flags().StringArrayVarP(&o.publish, "publish", "p", nil, "publish a guest port on the host: [IP:][HOSTPORT:]GUESTPORT[/tcp|/udp]")
	c.Flags().StringVar(&o.hostname, "hostname", "", "the guest's host name (default: the host's)")
	c.Flags().StringArrayVar(&o.addHosts, "add-host", nil, "add a line to the guest's /etc/hosts: NAME:IP (IP host-gateway: the host)")
	c.Flags().StringVar(&o.net, "net", "user", "the guest's network: user (through the host's sockets, no root), none (its loopback only) or tap:NAME (an existing tap device)")
	c.Flags().StringVar(&o.ip, "ip", "", "with --net tap: the guest's IPv4 address and prefix, as 192.168.10.2/24")
	c.Flags().StringVar(&o.gateway, "gateway", "", "with --net tap: the guest's default gateway (default: none, its subnet only)")
	c.Flags().StringVar(&o.mac, "mac-address", "", "with --net tap: the guest's Ethernet address (default: one made from its IP address)")
	c.Flags().StringArrayVar(&o.dns, "dns", nil, "with --net tap: a nameserver for the guest's /etc/resolv.conf")
	c.Flags().StringVar(&o.rootfs, "rootfs", "", "a directory to be the guest's / (as an image's files are); BINARY is looked for in it")
	c.Flags().BoolVar(&o.readOnly, "read-only", false, "the guest's / is read-only: no writable layer over an image or --rootfs (-v mounts, /tmp and $HOME stay writable)")
	c.Flags().BoolVar(&o.timing, "timing", false, "print boot timing")
	c.Flags().BoolVar(&o.trace, "trace", false, "print each of the app's system calls on stderr, as strace does")
	c.Flags().StringVarP(&o.workdir, "workdir", "w", "", "the app's working directory (default: pith's)")
	c.Flags().StringVar(&o.report, "report", "", "write how the guest ended to this file, as JSON (instance.Report)")
	c.Flags().MarkHidden("report")
	c.Flags().StringVar(&o.spawnedRoot, "spawned-root", "", "")
	c.Flags().StringVar(&o.spawnedArgv0, "spawned-argv0", "", "")
	c.Flags().StringVar(&o.spawnedEnv, "spawned-env", "", "")
	c.Flags().MarkHidden("spawned-env")
	c.Flags().StringVar(&o.spawnedExe, "spawned-exe", "", "")
	c.Flags().MarkHidden("spawned-exe")
	c.Flags().StringVar(&o.spawnedFDs, "spawned-fds", "", "")
	c.Flags().StringVar(&o.spawnedUmask, "spawned-umask", "", "")
	c.Flags().MarkHidden("spawned-umask")
	c.Flags().MarkHidden("spawned-fds")
	c.Flags().MarkHidden("spawned-root")
	c.Flags().MarkHidden("spawned-argv0")
	c.Flags().StringVar(&o.forked, "forked", "", "")
	c.Flags().MarkHidden("forked")
	return c
}

func runRun(o *runOptions, args []string) error {
	var err error
	switch { // each checks the program, naming it as the user knows it
	case o.rootfs != "":
		args, err = rootfsApp(o, args)
	case imageArg(args[0]):
		args, err = imageApp(o, args)
	default:
		// A program a guest started has that guest's root (its image, or --rootfs).
		var root string
		if o.spawnedRoot != "" {
			root, _ = os.Readlink(filepath.Join(o.spawnedRoot, "image"))
		}
		err = program.Check(args[0], root)
	}
	if err != nil {
		return err
	}
	cfg, err := o.machine.config()
	if err != nil {
		return err
	}

	// The app sees the environment it would natively (an image's own), then --env-file, then -e.
	env := os.Environ()
	if o.image != nil {
		env, cfg.Rootfs, cfg.Layer = o.image.env, o.image.root, o.image.layer
		if _, err := unix.IoctlGetTermios(1, unix.TCGETS); err == nil && !slices.ContainsFunc(env, isTERM) {
			env = append(env, "TERM=xterm") // on a terminal, as docker run -t gives it
		}
	}
	if o.spawnedEnv != "" { // the environment the program that started this one gave it
		b, err := os.ReadFile(o.spawnedEnv)
		if err != nil {
			return err
		}
		env = strings.Split(string(b), "\x00")
		if len(b) == 0 {
			env = nil
		}
	}
	for _, f := range o.envFile {
		vars, err := readEnvFile(f)
		if err != nil {
			return err
		}
		env = append(env, vars...)
	}
	cfg.Env = dedupEnv(append(env, cfg.Env...))
	for _, v := range o.volumes {
		m, err := parseVolume(v)
		if err != nil {
			return err
		}
		cfg.Mounts = append(cfg.Mounts, m)
	}
	switch tap, isTap := strings.CutPrefix(o.net, "tap:"); {
	case o.net == "user":
	case o.net == "none":
		cfg.Network = "none"
		if len(o.publish) > 0 {
			return errors.New("-p with --net none: a guest with no network has no ports to publish")
		}
	case isTap:
		cfg.Network, cfg.Tap = "tap", tap
		if len(o.publish) > 0 {
			return fmt.Errorf("-p with --net %s: the guest is reached at its own address on the tap's network, not through host ports", o.net)
		}
		if o.ip == "" {
			return fmt.Errorf("--net %s: give the guest's address on the tap's network: --ip ADDR/PREFIX (and --gateway IP to reach beyond it)", o.net)
		}
		if cfg.Numbering, err = network.ParseNumbering(o.ip, o.gateway); err != nil {
			return err
		}
		if o.mac != "" {
			if cfg.Numbering.Ether, err = network.ParseMAC(o.mac); err != nil {
				return err
			}
		}
		for _, d := range o.dns {
			a, err := netip.ParseAddr(d)
			if err != nil {
				return fmt.Errorf("--dns %s: not an IP address", d)
			}
			cfg.DNS = append(cfg.DNS, a)
		}
	default:
		return fmt.Errorf("--net %s: pith knows user (the default), none and tap:NAME", o.net)
	}
	if cfg.Network != "tap" && (o.ip != "" || o.gateway != "" || o.mac != "" || len(o.dns) > 0) {
		return errors.New("--ip, --gateway, --mac-address and --dns go with --net tap:NAME: the user network numbers the guest 10.0.2.15 and answers its DNS itself")
	}
	for _, spec := range o.publish {
		p, err := network.ParsePort(spec)
		if err != nil {
			return err
		}
		cfg.Publish = append(cfg.Publish, p)
	}
	if o.hostname != "" && !network.ValidHostname(o.hostname) {
		return fmt.Errorf("--hostname %s: a host name is 1 to 64 letters, digits, '-' and '.'", o.hostname)
	}
	cfg.Hostname = o.hostname
	for _, spec := range o.addHosts {
		name, ip, err := network.ParseHost(spec)
		if err != nil {
			return err
		}
		cfg.Hosts = append(cfg.Hosts, fileservice.Host{IP: ip, Name: name})
	}
	if o.workdir != "" && !filepath.IsAbs(o.workdir) {
		return fmt.Errorf("-w %s: the working directory must be an absolute path", o.workdir)
	}
	cfg.Workdir = filepath.Clean(o.workdir)
	if o.workdir == "" {
		cfg.Workdir = ""
	}
	cfg.Root = o.spawnedRoot
	cfg.Exe = o.spawnedExe
	if o.spawnedUmask != "" { // the guest's, not pith's own: pith's files keep theirs
		mask, err := strconv.ParseUint(o.spawnedUmask, 8, 32)
		if err != nil || mask > 0o777 {
			return fmt.Errorf("--spawned-umask %q: not an octal mode", o.spawnedUmask)
		}
		cfg.Umask = new(uint32(mask))
	}
	if cfg.Inherited, err = inheritedFiles(o.spawnedFDs); err != nil {
		return err
	}
	if o.forked != "" {
		if cfg.Fork, err = readFork(o.forked); err != nil {
			return err
		}
	}
	cfg.App = args[0]
	if o.spawnedArgv0 != "" {
		args = append([]string{o.spawnedArgv0}, args[1:]...)
	}
	cfg.Args = append([]string{"pith-kernel", "run"}, append([]string{"--"}, args...)...)
	cfg.AppArgsAt = 2
	cfg.ReadOnly = o.readOnly
	cfg.Timing = o.timing
	cfg.Interactive = true
	cfg.Trace = o.trace
	if session != nil { // this process is a detached unikernel's monitor (detach.go)
		return session.run(cfg)
	}
	if warmable(o, cfg) {
		if status, ok := runWarm(cfg); ok {
			if status != 0 {
				return statusError(status)
			}
			return nil
		}
	}
	return runGuestReporting(cfg, o.timing, o.report)
}

// readFork reads the state a guest's fork passed on (host/monitor/fileservice/fork.go):
// the JSON at path, with the parent's memory on descriptor 4.
func readFork(path string) (*monitor.Fork, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f := &monitor.Fork{Memory: os.NewFile(4, "guest memory")}
	if err := json.Unmarshal(b, &f.State); err != nil {
		return nil, fmt.Errorf("--forked: %v", err)
	}
	keepFromPrograms(4)
	for _, file := range f.State.Files {
		keepFromPrograms(uintptr(file.FD))
	}
	for _, w := range f.State.Windows {
		keepFromPrograms(uintptr(w.FD))
	}
	return f, nil
}

// keepFromPrograms makes a descriptor this pith inherited close-on-exec, before anything
// starts another program: it arrived without, and a program the guest starts must not
// hold it. A fork's bridge a started program held open past the guest's close never
// ended (bash's pipeline children waited for ever on the pipe that syncs their process
// group).
func keepFromPrograms(fd uintptr) {
	unix.CloseOnExec(int(fd))
}

func writeReport(path string, res *monitor.Result, err error) error {
	var r instance.Report
	switch {
	case err != nil:
		r.ExitCode, r.Error = exitPithError, err.Error()
		var crash *monitor.CrashError
		r.OutOfMemory = errors.As(err, &crash) && crash.OutOfMemory
	default:
		r.ExitCode, r.Signal, r.OutOfMemory = res.ExitCode, res.Signal, res.OutOfMemory
	}
	return r.Write(path)
}

// parseVolume reads -v HOST[:GUEST][:ro|rw], as Docker writes it.
func parseVolume(v string) (fileservice.Mount, error) {
	parts := strings.Split(v, ":")
	m := fileservice.Mount{}
	if n := len(parts); n > 1 && (parts[n-1] == "ro" || parts[n-1] == "rw") {
		m.Writable = parts[n-1] == "rw"
		parts = parts[:n-1]
	}
	switch len(parts) {
	case 1:
		m.Host, m.Guest = parts[0], parts[0]
	case 2:
		m.Host, m.Guest = parts[0], parts[1]
	default:
		return m, fmt.Errorf("-v %q: use HOST[:GUEST][:ro|rw]", v)
	}
	host, err := filepath.Abs(m.Host)
	if err != nil {
		return m, err
	}
	m.Host = host
	if !filepath.IsAbs(m.Guest) {
		return m, fmt.Errorf("-v %q: the guest path must be absolute", v)
	}
	m.Guest = filepath.Clean(m.Guest)
	return m, nil
}

func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %v", err)
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, _, ok := strings.Cut(line, "="); !ok || k == "" {
			return nil, fmt.Errorf("--env-file %s:%d: %q is not KEY=VALUE", path, n, line)
		}
		env = append(env, line)
	}
	return env, sc.Err()
}

// isTERM reports whether the environment entry e sets TERM.
func isTERM(e string) bool { return strings.HasPrefix(e, "TERM=") }

// dedupEnv keeps the last value of each variable, in first-seen order.
func dedupEnv(env []string) []string {
	last := map[string]int{}
	for i, e := range env {
		k, _, _ := strings.Cut(e, "=")
		last[k] = i
	}
	var out []string
	for i, e := range env {
		k, _, _ := strings.Cut(e, "=")
		if last[k] == i {
			out = append(out, e)
		}
	}
	return out
}

// inheritedFiles reads --spawned-fds, the descriptors a started program inherits as files
// or pipes from the guest that started it (above 2, and those of 0-2 that are host
// files; host/monitor/fileservice spawn): FD:HOSTFD:KIND:FLAGS:W:HEXPATH,... with
// HOSTFD this process's descriptor of the
// host file or pipe, KIND abi.SpawnFile, SpawnPipeIn or SpawnPipeOut, and HEXPATH the
// guest's path of it in hexadecimal (empty for none).
func inheritedFiles(spec string) ([]monitor.InheritedFile, error) {
	var files []monitor.InheritedFile
	for _, one := range strings.Split(spec, ",") {
		if one == "" {
			continue
		}
		var nums [5]uint64
		path, ok := fdspec.Parse(one, nums[:])
		kind := nums[2]
		if !ok || nums[1] < 3 || nums[3] > math.MaxUint32 ||
			kind != abi.SpawnFile && kind != abi.SpawnPipeIn && kind != abi.SpawnPipeOut {
			return nil, fmt.Errorf("--spawned-fds: %q is not FD:HOSTFD:KIND:FLAGS:W:HEXPATH", one)
		}
		keepFromPrograms(uintptr(nums[1]))
		files = append(files, monitor.InheritedFile{FD: int(nums[0]), File: os.NewFile(uintptr(nums[1]), "inherited"),
			Kind: kind, Flags: uint32(nums[3]), Writable: nums[4] == 1, Path: path})
	}
	return files, nil
}
