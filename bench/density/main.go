// Command density starts -n idle net/http servers (bench/apps/httphello) as unikernels
// with `pith run -d -p`, waits until each answers a request, and measures what they cost
// the host: the time to start them all, the time from each `run -d` to its first answer,
// host memory per unikernel (PSS and RSS of its monitor process and any process under it,
// from /proc/PID/smaps_rollup), the host CPU all of them use while idle (utime+stime from
// /proc/PID/stat over -idle), `pith ps` with all of them running, and the time to stop
// and remove them all. The same binary run natively, -n times, is measured beside it.
// runc is compared where installed and able to run; elsewhere a line says it was not.
//
// With -detail it also says where an idle unikernel's time goes, per unikernel and
// second: the guest's own counters (exits, interrupts, thread switches, system calls,
// read from each monitor's stats socket), KVM's (from /sys/kernel/debug/kvm, when
// debugfs is mounted), and the host-side wake-ups of each kind of monitor thread (context
// switches from /proc/PID/task/TID/status, the thread told apart by the system call it
// waits in).
//
// Everything it starts runs under a private PITH_RUNTIME and is removed at the end, on
// an error, or on SIGINT/SIGTERM.
//
//	make && go run ./bench/density -n 200
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	bin     = flag.String("bin", "bin", "directory holding pith and pith-kernel")
	server  = flag.String("server", "", "prebuilt bench/apps/httphello (default: build it)")
	n       = flag.Int("n", 200, "how many servers each way")
	idle    = flag.Duration("idle", 10*time.Second, "how long idle CPU is measured")
	settle  = flag.Duration("settle", 2*time.Second, "how long after the last answer memory and idle CPU are measured")
	memory  = flag.String("m", "", "pith run -m (default: pith's)")
	detail  = flag.Bool("detail", false, "say where an idle unikernel's host CPU goes")
	native  = flag.Bool("native", true, "measure the same servers run natively too")
	firstTO = flag.Duration("timeout", 120*time.Second, "how long one server may take to answer")
)

// server is one running server, however it was started.
type running struct {
	id    string // the unikernel's ID (pith); empty natively
	pid   int    // the monitor's (pith) or the server's (native) process
	port  int
	start time.Time     // when run -d (or the exec) began
	first time.Duration // from start to the first answer
	cmd   *exec.Cmd     // native only
}

// figures are one way's results.
type figures struct {
	name              string
	started           int
	total             time.Duration // first start to last first answer
	firsts            []time.Duration
	pss, rss, anon    []float64 // MiB per server
	cpuTicks          int64     // over -idle, all servers together
	ps                time.Duration
	stop, rm, killAll time.Duration
}

var (
	cleanupMu sync.Mutex
	cleanups  []func()
)

func atCleanup(f func()) {
	cleanupMu.Lock()
	cleanups = append(cleanups, f)
	cleanupMu.Unlock()
}

func cleanup() {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

func main() {
	flag.Parse()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "bench/density: %v: cleaning up\n", s)
		cleanup()
		os.Exit(130)
	}()
	defer cleanup()
	dir, err := os.MkdirTemp("", "pith-bench-density-")
	if err != nil {
		fatal("%v", err)
	}
	atCleanup(func() { os.RemoveAll(dir) })
	srv := *server
	if srv == "" {
		srv = filepath.Join(dir, "httphello")
		c := exec.Command("go", "build", "-o", srv, "./bench/apps/httphello")
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := c.CombinedOutput(); err != nil {
			fatal("building the server: %v\n%s", err, b)
		}
	}
	srv, _ = filepath.Abs(srv)
	pith, _ := filepath.Abs(filepath.Join(*bin, "pith"))
	ticks := clockTicks()
	fmt.Printf("%d idle net/http servers each way; idle CPU over %v; %d CPUs; clock %d ticks/s\n\n", *n, *idle, nproc(), ticks)

	var all []figures
	if *native {
		all = append(all, runNative(dir, srv))
	}
	all = append(all, runPith(dir, pith, srv))
	if _, err := exec.LookPath("runc"); err != nil {
		fmt.Println("runc: not installed; not compared")
	} else {
		fmt.Println("runc: installed, but this benchmark does not drive it yet; not compared")
	}

	fmt.Printf("\n%-14s %7s %10s %11s %11s %9s %9s %9s %12s %9s %9s\n", "", "up", "all up", "first p50", "first p90",
		"PSS MiB", "RSS MiB", "anon MiB", "idle CPU %", "ps", "stop+rm")
	for _, f := range all {
		idlePct := float64(f.cpuTicks) / float64(ticks) / idle.Seconds() * 100
		fmt.Printf("%-14s %3d/%-3d %10v %11v %11v %9.2f %9.2f %9.2f %5.2f (%.4f each) %9v %9v\n", f.name, f.started, *n,
			f.total.Round(time.Millisecond), pct(f.firsts, 50).Round(time.Millisecond), pct(f.firsts, 90).Round(time.Millisecond),
			mean(f.pss), mean(f.rss), mean(f.anon), idlePct, idlePct/float64(max(f.started, 1)),
			f.ps.Round(time.Millisecond), (f.stop + f.rm + f.killAll).Round(time.Millisecond))
	}
	for _, f := range all {
		if f.stop > 0 || f.rm > 0 {
			fmt.Printf("%s: stop %v, rm %v\n", f.name, f.stop.Round(time.Millisecond), f.rm.Round(time.Millisecond))
		}
		if len(f.pss) > 0 {
			fmt.Printf("%s: PSS per server min %.2f max %.2f MiB; RSS min %.2f max %.2f MiB\n", f.name,
				slices.Min(f.pss), slices.Max(f.pss), slices.Min(f.rss), slices.Max(f.rss))
		}
	}
}

// runNative starts the servers as plain processes.
func runNative(dir, srv string) figures {
	f := figures{name: "native"}
	var rs []*running
	atCleanup(func() {
		for _, r := range rs {
			if r.cmd.ProcessState == nil {
				r.cmd.Process.Kill()
				r.cmd.Wait()
			}
		}
	})
	t0 := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < *n; i++ {
		port, err := freePort()
		if err != nil {
			fmt.Printf("native: %v\n", err)
			break
		}
		r := &running{port: port, start: time.Now()}
		r.cmd = exec.Command(srv, "-addr", fmt.Sprintf("127.0.0.1:%d", port))
		if err := r.cmd.Start(); err != nil {
			fmt.Printf("native: starting server %d: %v\n", i, err)
			break
		}
		r.pid = r.cmd.Process.Pid
		rs = append(rs, r)
		wg.Add(1)
		go func() { defer wg.Done(); waitFirst(r) }()
	}
	wg.Wait()
	f.total = time.Since(t0)
	collect(&f, rs, nil)
	t := time.Now()
	for _, r := range rs {
		r.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, r := range rs {
		r.cmd.Wait()
	}
	f.killAll = time.Since(t)
	return f
}

// runPith starts the servers as unikernels with pith run -d.
func runPith(dir, pith, srv string) figures {
	f := figures{name: "pith run -d"}
	rt := filepath.Join(dir, "runtime")
	os.Setenv("PITH_RUNTIME", rt)
	var rs []*running
	var ids []string
	// However the benchmark ends, every unikernel goes: rm -f kills what still runs.
	atCleanup(func() {
		if len(ids) > 0 {
			exec.Command(pith, append([]string{"rm", "-f"}, ids...)...).Run()
		}
		// A monitor rm could not reach (its state unreadable) is killed by its PID.
		for _, r := range rs {
			if r.pid > 0 && syscall.Kill(r.pid, 0) == nil {
				syscall.Kill(r.pid, syscall.SIGKILL)
			}
		}
	})
	args := []string{"run", "-d"}
	if *memory != "" {
		args = append(args, "-m", *memory)
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	var runD []time.Duration
	for i := 0; i < *n; i++ {
		port, err := freePort()
		if err != nil {
			fmt.Printf("pith: %v\n", err)
			break
		}
		r := &running{port: port, start: time.Now()}
		out, err := exec.Command(pith, append(args, "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), srv)...).CombinedOutput()
		runD = append(runD, time.Since(r.start))
		if err != nil {
			fmt.Printf("pith: run -d of server %d: %v: %s\n", i, err, bytes.TrimSpace(out))
			break
		}
		lines := strings.Fields(string(out))
		r.id = lines[len(lines)-1] // the ID is the last line, after any warning
		ids = append(ids, r.id)
		r.pid = monitorPID(rt, r.id)
		rs = append(rs, r)
		wg.Add(1)
		go func() { defer wg.Done(); waitFirst(r) }()
	}
	wg.Wait()
	f.total = time.Since(t0)
	fmt.Printf("pith: run -d returned after p50 %v, p90 %v\n", pct(runD, 50).Round(time.Millisecond), pct(runD, 90).Round(time.Millisecond))
	collect(&f, rs, func(r *running) guestCounts { return liveCounts(r.id) })
	var ps []time.Duration
	for i := 0; i < 3; i++ {
		t := time.Now()
		out, err := exec.Command(pith, "ps").CombinedOutput()
		ps = append(ps, time.Since(t))
		if err != nil {
			fmt.Printf("pith ps: %v: %s\n", err, out)
		} else if i == 0 {
			fmt.Printf("pith ps lists %d lines with %d running\n", bytes.Count(out, []byte("\n")), len(rs))
		}
	}
	f.ps = pct(ps, 50)
	if len(ids) > 0 {
		t := time.Now()
		if out, err := exec.Command(pith, append([]string{"stop"}, ids...)...).CombinedOutput(); err != nil {
			fmt.Printf("pith stop: %v: %s\n", err, lastLines(out))
		}
		f.stop = time.Since(t)
		t = time.Now()
		if out, err := exec.Command(pith, append([]string{"rm"}, ids...)...).CombinedOutput(); err != nil {
			fmt.Printf("pith rm: %v: %s\n", err, lastLines(out))
		} else {
			ids = nil
		}
		f.rm = time.Since(t)
	}
	return f
}

// collect measures the started servers' memory and idle CPU into f; counts, if not nil,
// reads a unikernel's guest counters (for -detail).
func collect(f *figures, rs []*running, counts func(*running) guestCounts) {
	for _, r := range rs {
		if r.first > 0 {
			f.started++
			f.firsts = append(f.firsts, r.first)
		}
	}
	fmt.Printf("%s: %d of %d answered; all in %v; first answer p50 %v p90 %v max %v\n", f.name, f.started, len(rs),
		f.total.Round(time.Millisecond), pct(f.firsts, 50).Round(time.Millisecond), pct(f.firsts, 90).Round(time.Millisecond),
		pct(f.firsts, 100).Round(time.Millisecond))
	time.Sleep(*settle) // let the last start's work (GC, log writes) settle
	for _, r := range rs {
		var m smaps
		for _, pid := range tree(r.pid) {
			m.add(readSmaps(pid))
		}
		f.pss = append(f.pss, m.pss/1024)
		f.rss = append(f.rss, m.rss/1024)
		f.anon = append(f.anon, m.anon/1024)
	}
	var total smaps
	for _, r := range rs {
		for _, pid := range tree(r.pid) {
			total.add(readSmaps(pid))
		}
	}
	if len(rs) > 0 {
		fmt.Printf("%s: per server (MiB): PSS %.2f (anon %.2f, file %.2f, shmem %.2f), RSS %.2f, private %.2f\n", f.name,
			total.pss/1024/float64(len(rs)), total.pssAnon/1024/float64(len(rs)), total.pssFile/1024/float64(len(rs)),
			total.pssShmem/1024/float64(len(rs)), total.rss/1024/float64(len(rs)), total.private/1024/float64(len(rs)))
	}

	if *detail && len(rs) > 0 {
		mappings(rs[len(rs)/2].pid)
		if counts != nil {
			var ls struct{ Process processMemory }
			liveJSON(rs[len(rs)/2].id, &ls)
			p := ls.Process
			fmt.Printf("%s: one monitor's Go runtime (MiB): heap in use %.2f, heap idle not returned %.2f, stacks %.2f, all it took %.2f; %d goroutines\n",
				f.name, mib(p.HeapInuse), mib(p.HeapIdleUnreleased), mib(p.StackInuse), mib(p.Sys), p.Goroutines)
		}
	}

	// Idle CPU, and with -detail where it goes.
	before := cpuOf(rs)
	var tb map[string]threadSample
	var gb []guestCounts
	var kb map[string]int64
	if *detail {
		tb = threads(rs)
		kb = kvmStats()
		if counts != nil {
			for _, r := range rs {
				gb = append(gb, counts(r))
			}
		}
	}
	time.Sleep(*idle)
	after := cpuOf(rs)
	f.cpuTicks = after - before
	if !*detail || len(rs) == 0 {
		return
	}
	ta := threads(rs)
	ka := kvmStats()
	per := func(v int64) float64 { return float64(v) / float64(len(rs)) / idle.Seconds() }
	fmt.Printf("%s: host-side wake-ups (context switches) per server per second, by what the thread waits in:\n", f.name)
	kinds := map[string][2]int64{}
	for tid, a := range ta {
		b, ok := tb[tid]
		if !ok {
			continue
		}
		k := kinds[a.kind]
		k[0] += a.switches - b.switches
		k[1] += a.ticks - b.ticks
		kinds[a.kind] = k
	}
	for _, kind := range sortedKeys(kinds) {
		fmt.Printf("  %-28s %8.2f wake-ups/s, %6.3f ms CPU/s\n", kind, per(kinds[kind][0]), per(kinds[kind][1])*1000/float64(clockTicks()))
	}
	if len(gb) == len(rs) {
		var d guestCounts
		for i, r := range rs {
			a := counts(r)
			d.add(a, gb[i])
		}
		fmt.Printf("%s: guest counters per unikernel per second: %.2f exits, %.2f interrupts, %.2f thread switches, %.2f wake-up IPIs, %.2f traps (%.2f app system calls), %.2f exceptions, %.2f page faults\n",
			f.name, per(int64(d.Exits)), per(int64(d.Interrupts)), per(int64(d.Switches)), per(int64(d.Wakeups)), per(int64(d.Syscalls)),
			per(int64(d.AppSyscalls)), per(int64(d.Exceptions)), per(int64(d.PageFaults)))
	}
	if kb != nil && ka != nil {
		fmt.Printf("%s: KVM's counters (all VMs on the host) per unikernel per second:", f.name)
		for _, k := range sortedKeys(ka) {
			if v := ka[k] - kb[k]; v != 0 {
				fmt.Printf(" %s %.2f", k, per(v))
			}
		}
		fmt.Println()
	}
}

// waitFirst polls r's port until it answers, and records how long that took.
func waitFirst(r *running) {
	c := &http.Client{Timeout: 2 * time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/", r.port)
	for deadline := r.start.Add(*firstTO); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		resp, err := c.Get(url)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			r.first = time.Since(r.start)
			return
		}
	}
}

// monitorPID reads the unikernel's monitor PID from its state.json.
func monitorPID(rt, id string) int {
	b, err := os.ReadFile(filepath.Join(rt, id, "state.json"))
	if err != nil {
		return 0
	}
	var st struct {
		Pid int `json:"pid"`
	}
	json.Unmarshal(b, &st)
	return st.Pid
}

// guestCounts mirrors monitor.GuestCounts, as the stats socket sends it.
type guestCounts struct {
	Exits, Syscalls, AppSyscalls, Exceptions, PageFaults, Interrupts, Switches, IPIsSent, Wakeups uint64
}

func (g *guestCounts) add(a, b guestCounts) {
	g.Exits += a.Exits - b.Exits
	g.Syscalls += a.Syscalls - b.Syscalls
	g.AppSyscalls += a.AppSyscalls - b.AppSyscalls
	g.Exceptions += a.Exceptions - b.Exceptions
	g.PageFaults += a.PageFaults - b.PageFaults
	g.Interrupts += a.Interrupts - b.Interrupts
	g.Switches += a.Switches - b.Switches
	g.IPIsSent += a.IPIsSent - b.IPIsSent
	g.Wakeups += a.Wakeups - b.Wakeups
}

// liveCounts asks a unikernel's monitor for its guest counters (pith stats' socket).
func liveCounts(id string) guestCounts {
	var ls struct{ Guest guestCounts }
	liveJSON(id, &ls)
	return ls.Guest
}

// processMemory mirrors monitor.ProcessMemory.
type processMemory struct {
	HeapInuse, HeapIdleUnreleased, StackInuse, Sys uint64
	Goroutines                                     int
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// liveJSON decodes what a unikernel's monitor answers on pith stats' socket into v.
func liveJSON(id string, v any) {
	c, err := net.DialTimeout("unix", "@pith-stats-"+id, time.Second)
	if err != nil {
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	json.NewDecoder(c).Decode(v)
}

// mappings prints pid's memory mappings that hold more than 64 KiB, from
// /proc/PID/smaps: where a monitor's memory is (guest memory, the kernel and app files
// mapped into it, pith's own heap and text).
func mappings(pid int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return
	}
	fmt.Printf("mappings of monitor %d over 64 KiB resident (KiB): size, RSS, PSS, anonymous, what\n", pid)
	var head string
	var size, rss, pss, anon float64
	flush := func() {
		if head != "" && rss > 64 {
			f := strings.Fields(head)
			what := "[anon]"
			if len(f) >= 6 {
				what = strings.Join(f[5:], " ")
			}
			fmt.Printf("  %-27s %9.0f %7.0f %7.0f %7.0f  %s %s\n", f[0], size, rss, pss, anon, f[1], what)
		}
	}
	var tr, tp, ta float64
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") || strings.Contains(f[0], "-") {
			flush()
			head, size, rss, pss, anon = line, 0, 0, 0, 0
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "Size:":
			size = v
		case "Rss:":
			rss, tr = v, tr+v
		case "Pss:":
			pss, tp = v, tp+v
		case "Anonymous:":
			anon, ta = v, ta+v
		}
	}
	flush()
	fmt.Printf("  all mappings: RSS %.0f, PSS %.0f, anonymous %.0f KiB\n", tr, tp, ta)
}

// tree is pid and every process under it.
func tree(pid int) []int {
	if pid <= 0 {
		return nil
	}
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp := statField(p, 4); pp > 0 {
			children[int(pp)] = append(children[int(pp)], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// statField is field i (1-based, as proc(5) counts) of /proc/PID/stat, or -1.
func statField(pid, i int) int64 {
	return statFieldOf(fmt.Sprintf("/proc/%d/stat", pid), i)
}

func statFieldOf(path string, i int) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	s := string(b)
	j := strings.LastIndexByte(s, ')')
	if j < 0 {
		return -1
	}
	f := strings.Fields(s[j+1:]) // field 3 onwards
	if i-3 >= len(f) || i < 3 {
		return -1
	}
	v, _ := strconv.ParseInt(f[i-3], 10, 64)
	return v
}

// cpuOf is the utime+stime, in clock ticks, of every process of rs.
func cpuOf(rs []*running) int64 {
	var t int64
	for _, r := range rs {
		for _, pid := range tree(r.pid) {
			if u := statField(pid, 14); u >= 0 {
				t += u + statField(pid, 15)
			}
		}
	}
	return t
}

// threadSample is one thread's context switches and CPU so far, and what it waits in.
type threadSample struct {
	kind            string
	switches, ticks int64
}

// threads samples every thread of rs's processes, by "PID/TID".
func threads(rs []*running) map[string]threadSample {
	out := map[string]threadSample{}
	for _, r := range rs {
		for _, pid := range tree(r.pid) {
			tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
			for _, t := range tasks {
				dir := fmt.Sprintf("/proc/%d/task/%s", pid, t.Name())
				s := threadSample{kind: threadKind(dir)}
				if b, err := os.ReadFile(dir + "/status"); err == nil {
					sc := bufio.NewScanner(bytes.NewReader(b))
					for sc.Scan() {
						k, v, _ := strings.Cut(sc.Text(), ":")
						if k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches" {
							x, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
							s.switches += x
						}
					}
				}
				s.ticks = statFieldOf(dir+"/stat", 14) + statFieldOf(dir+"/stat", 15)
				out[fmt.Sprintf("%d/%s", pid, t.Name())] = s
			}
		}
	}
	return out
}

// threadKind names what a thread waits in, from /proc/PID/task/TID/syscall.
func threadKind(dir string) string {
	b, err := os.ReadFile(dir + "/syscall")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "unknown"
	}
	switch f[0] {
	case "16":
		return "ioctl (vCPU in KVM_RUN)"
	case "202":
		return "futex (idle Go thread)"
	case "232", "281":
		return "epoll_wait (Go netpoller)"
	case "0":
		return "read"
	case "7", "271":
		return "poll"
	case "35", "230":
		return "nanosleep (Go sysmon)"
	case "running":
		return "running"
	}
	return "syscall " + f[0]
}

// kvmStats reads KVM's global counters from debugfs, or nil.
func kvmStats() map[string]int64 {
	ents, err := os.ReadDir("/sys/kernel/debug/kvm")
	if err != nil {
		return nil
	}
	out := map[string]int64{}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile("/sys/kernel/debug/kvm/" + e.Name())
		if err != nil {
			continue
		}
		if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
			out[e.Name()] = v
		}
	}
	return out
}

// smaps is what /proc/PID/smaps_rollup says, in KiB.
type smaps struct{ rss, pss, pssAnon, pssFile, pssShmem, anon, private float64 }

func (s *smaps) add(o smaps) {
	s.rss += o.rss
	s.pss += o.pss
	s.pssAnon += o.pssAnon
	s.pssFile += o.pssFile
	s.pssShmem += o.pssShmem
	s.anon += o.anon
	s.private += o.private
}

func readSmaps(pid int) smaps {
	var s smaps
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return s
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "Rss:":
			s.rss = v
		case "Pss:":
			s.pss = v
		case "Pss_Anon:":
			s.pssAnon = v
		case "Pss_File:":
			s.pssFile = v
		case "Pss_Shmem:":
			s.pssShmem = v
		case "Anonymous:":
			s.anon = v
		case "Private_Clean:", "Private_Dirty:":
			s.private += v
		}
	}
	return s
}

var portNext = 20000 + os.Getpid()%20000

// freePort is a loopback port nothing listens on, never the same one twice in a run.
func freePort() (int, error) {
	for tries := 0; tries < 5000; tries++ {
		portNext++
		if portNext > 60000 {
			portNext = 20000
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", portNext))
		if err == nil {
			ln.Close()
			return portNext, nil
		}
	}
	return 0, fmt.Errorf("no free loopback port")
}

func clockTicks() int64 { return 100 } // USER_HZ on Linux x86-64

func nproc() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return max(bytes.Count(b, []byte("processor\t")), 1)
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(min(i, len(s))-1, 0)]
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var t float64
	for _, x := range v {
		t += x
	}
	return t / float64(len(v))
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

func lastLines(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(len(lines)-3, 0):], "\n")
}

func fatal(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench/density: "+f+"\n", a...)
	cleanup()
	os.Exit(1)
}
