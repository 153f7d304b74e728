package monitor

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/host/monitor/fileservice"
	"github.com/pithvm/pith/host/monitor/kvm"
	"github.com/pithvm/pith/host/monitor/memory"
	"github.com/pithvm/pith/host/network"
)

// setRunConfig takes Run's part of the configuration; the vCPUs read it under m.mu.
func (m *machine) setRunConfig(c Config) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !c.Started.IsZero() {
		m.cfg.Started = c.Started
	}
	m.cfg.Stdout, m.cfg.Stderr = c.Stdout, c.Stderr
	m.cfg.App, m.cfg.Args, m.cfg.AppArgsAt, m.cfg.Env = c.App, c.Args, c.AppArgsAt, c.Env
	m.cfg.Mounts, m.cfg.Workdir, m.cfg.Root, m.cfg.Exe, m.cfg.Rootfs, m.cfg.Layer = c.Mounts, c.Workdir, c.Root, c.Exe, c.Rootfs, c.Layer
	m.cfg.Trace, m.cfg.Interactive, m.cfg.Deadline = c.Trace, c.Interactive, c.Deadline
}

// appSpec readies the run for tier 1: opens the file service and encodes what
// FileAppSpec returns.
func (m *machine) appSpec() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &m.cfg
	if fi, err := os.Stat(c.App); err != nil {
		return nil, err
	} else if prepared, err := m.app.Stat(); err != nil || !os.SameFile(fi, prepared) {
		return nil, fmt.Errorf("%s is not the executable this VM was prepared with", c.App)
	}
	exe, _ := filepath.Abs(c.App)
	hostname := c.Hostname
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	copy(m.info.Hostname[:], hostname)
	own, dns := network.GuestIP, []netip.Addr{network.DNS}
	switch c.Network {
	case "none":
		own = netip.MustParseAddr("127.0.1.1") // Debian's address for a name with no network
		dns = nil
	case "tap":
		own, dns = c.Numbering.Address.Addr(), c.DNS
	}
	files, err := fileservice.New(fileservice.Options{Exe: exe, Mounts: c.Mounts, SharedRoot: c.Root,
		Home: envValue(c.Env, "HOME"), SpawnFlags: SpawnFlags(c), Hostname: hostname,
		Hosts: append([]fileservice.Host{{IP: own, Name: hostname}}, c.Hosts...), Nameservers: dns, Root: c.Rootfs, Layer: c.Layer, ReadOnly: c.ReadOnly})
	if err != nil {
		return nil, err
	}
	m.files = files
	umask := files.Umask()
	if c.Umask != nil {
		umask = *c.Umask
	}
	m.info.Umask = uint64(umask)
	if c.Trace {
		atomic.OrUint64(&m.info.Flags, abi.FlagTrace)
	}
	cwd := c.Workdir
	if cwd == "" {
		cwd, _ = os.Getwd()
	}
	fastCalls := <-m.fastCalls
	m.fastCalls <- fastCalls
	args := []string{fmt.Sprintf("--app-addr=%#x", m.info.AppAddr), fmt.Sprintf("--app-size=%d", m.info.AppSize),
		"--cwd=" + cwd, "--exe=" + c.Exe, fmt.Sprintf("--trace=%v", c.Trace), "--fast-calls=" + fastCalls}
	for _, f := range c.Inherited {
		var h uint64
		if f.Kind == abi.SpawnFile {
			h = files.AddFile(f.File, f.Writable)
		} else if h, err = files.InheritStream(f.File); err != nil {
			return nil, err
		}
		args = append(args, fmt.Sprintf("--fd=%d:%d:%d:%#x:%x", f.FD, f.Kind, h, f.Flags, f.Path))
	}
	args = append(args, c.Args[c.AppArgsAt:]...)
	var b bytes.Buffer
	b.WriteString(strconv.Itoa(len(args)))
	b.WriteByte(0)
	for _, s := range append(args, guestEnv(c.Env, c.Memory)...) {
		b.WriteString(s)
		b.WriteByte(0)
	}
	return b.Bytes(), nil
}

// serveAppSpec answers tier 1's FileAppSpec, waiting, with m.mu released, until Run has
// the app. A guest that ends before (Close, or Run without an app) gets ECANCELED.
func (m *machine) serveAppSpec(mmu memory.Virtual, r *abi.FileRequest) int64 {
	if m.spec == nil {
		return -int64(unix.ENOSYS)
	}
	if m.specBytes == nil {
		m.mu.Unlock()
		var spec []byte
		select {
		case spec = <-m.spec:
		case <-m.stopping:
		}
		m.mu.Lock()
		if spec == nil && m.specBytes == nil {
			return -int64(unix.ECANCELED)
		}
		if spec != nil {
			m.specBytes = spec
		}
	}
	if uint64(len(m.specBytes)) > r.Len {
		r.Len = uint64(len(m.specBytes))
		return -int64(unix.ERANGE)
	}
	if mmu.Write(r.Buf, m.specBytes) != nil {
		return -int64(unix.EFAULT)
	}
	return int64(len(m.specBytes))
}

// forwardSignals passes the signals a user sends pith on to the guest, as Docker does:
// the monitor records them for tier 0 and interrupts vCPU 0, tier 0 posts them to tier 1,
// which gives them to the app. A SIGINT while the guest has not yet taken the one before
// kills it: a guest that does not answer ends at a second Ctrl-C, while one that does
// decides itself (a shell at its prompt goes on, as natively). SIGWINCH, which a
// terminal sends when its size changes, tells a program to ask for the size again;
// SIGALRM comes from the alarm of the program a guest replaced itself with (execve). It
// returns a stop func.
// Signals already caught elsewhere (Config.Signals) come from that channel instead.
func (m *machine) forwardSignals(vm *kvm.VM, caught <-chan os.Signal) (stop func()) {
	sigs := caught
	unnotify := func() {}
	if sigs == nil {
		ch := make(chan os.Signal, 8)
		signal.Notify(ch, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH, unix.SIGALRM)
		sigs, unnotify = ch, func() { signal.Stop(ch) }
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			var s os.Signal
			select {
			case s = <-sigs:
			case <-done:
				return
			}
			n := s.(unix.Signal)
			bit := uint64(1) << (uint(n) - 1)
			if n == unix.SIGINT && atomic.LoadUint64(&m.info.HostSignals)&bit != 0 {
				m.interrupted.Store(true)
				m.killed.Store(128 + int32(n))
				m.stopAll()
				return
			}
			atomic.OrUint64(&m.info.HostSignals, bit)
			vm.SignalMSI(0, abi.VectorWakeup)
		}
	}()
	// Once stop returns, nothing here touches the VM: it may be closed.
	return func() {
		unnotify()
		close(done)
		<-stopped
	}
}

// SpawnFlags are the pith run flags a started program gets besides its own: the mounts,
// memory and vCPUs of the guest that started it.
func SpawnFlags(c *Config) []string {
	flags := []string{"-m", strconv.FormatUint(c.Memory, 10), "--cpus", strconv.Itoa(c.CPUs)}
	if c.Network == "none" {
		flags = append(flags, "--net", "none")
	}
	if c.Hostname != "" {
		flags = append(flags, "--hostname", c.Hostname)
	}
	if c.ReadOnly {
		flags = append(flags, "--read-only")
	}
	for _, m := range c.Mounts {
		mode := "ro"
		if m.Writable {
			mode = "rw"
		}
		flags = append(flags, "-v", m.Host+":"+m.Guest+":"+mode)
	}
	return flags
}
