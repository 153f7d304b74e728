// Command net compares a net/http server run by `pith run -p` with the same binary run
// natively on loopback and, where installed, in gVisor's runsc (bench/gvisor.sh), side by
// side in one run: time from start to the first answered request, requests per second
// and latency under -c keep-alive connections (and wrk's figures, where wrk is
// installed), bulk transfer each way, the server's idle memory, and for pith the exits,
// notifications and interrupts per request (pith run --timing).
// `make && go run ./bench/net`
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

var (
	bin      = flag.String("bin", "bin", "directory holding pith and pith-kernel")
	server   = flag.String("server", "", "prebuilt bench/apps/httphello (default: build it)")
	duration = flag.Duration("d", 10*time.Second, "how long each load runs")
	conns    = flag.Int("c", 16, "concurrent keep-alive connections")
	bulk     = flag.Int64("bulk", 1<<30, "bytes of each bulk transfer")
)

// peer is one way of running the server: cmd(hostPort) starts it listening there.
type peer struct {
	name string
	cmd  func(port int) *exec.Cmd
}

// result is what one peer measured.
type result struct {
	setup           time.Duration
	reqs            float64
	p50, p99        time.Duration
	wrk             string
	out, in         float64 // MB/s from the server, to it
	idleRSS         int64   // bytes, after the first answer
	loadedRSS       int64   // ... and after the load and bulk transfers
	timing, network string  // pith run --timing's lines
	requests        int64
	err             error
}

func main() {
	flag.Parse()
	dir, err := os.MkdirTemp("", "pith-bench-net-")
	if err != nil {
		fatal("%v", err)
	}
	defer os.RemoveAll(dir)
	srv := *server
	if srv == "" {
		srv = filepath.Join(dir, "httphello")
		c := exec.Command("go", "build", "-o", srv, "./bench/apps/httphello")
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := c.CombinedOutput(); err != nil {
			fatal("building the server: %v\n%s", err, b)
		}
	}
	pith, _ := filepath.Abs(filepath.Join(*bin, "pith"))
	peers := []peer{
		{"native", func(port int) *exec.Cmd {
			return exec.Command(srv, "-addr", fmt.Sprintf("127.0.0.1:%d", port))
		}},
		{"pith run -p", func(port int) *exec.Cmd {
			return exec.Command(pith, "run", "--timing", "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), srv)
		}},
	}
	if runsc, err := exec.LookPath("runsc"); err == nil {
		if bundle, err := runscBundle(dir, srv); err == nil {
			peers = append(peers, peer{"runsc (host network)", func(port int) *exec.Cmd {
				return exec.Command(runsc, "--root", filepath.Join(dir, "runsc-state"), "--ignore-cgroups", "--network=host",
					"run", "--bundle", bundleFor(bundle, port), fmt.Sprintf("pith-bench-net-%d", port))
			}})
		} else {
			fmt.Println("runsc: skipped:", err)
		}
	} else {
		fmt.Println("runsc: not installed (bench/gvisor.sh builds it); skipped")
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		fmt.Println("wrk: not installed (apt-get install wrk); only the built-in load")
	}
	fmt.Printf("load: %d keep-alive connections for %v; bulk: %d MiB each way\n\n", *conns, *duration, *bulk>>20)
	results := make([]result, len(peers))
	for i, p := range peers {
		results[i] = measure(p)
		if results[i].err != nil {
			fmt.Printf("%s: %v\n", p.name, results[i].err)
		}
	}
	fmt.Printf("%-22s %10s %10s %9s %9s %10s %10s %10s %10s\n", "", "setup", "req/s", "p50", "p99", "MB/s out", "MB/s in", "idle PSS", "after")
	for i, p := range peers {
		r := results[i]
		if r.err != nil {
			continue
		}
		fmt.Printf("%-22s %10v %10.0f %9v %9v %10.1f %10.1f %9.1fM %9.1fM\n", p.name, r.setup.Round(10*time.Microsecond), r.reqs,
			r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.out, r.in, float64(r.idleRSS)/(1<<20), float64(r.loadedRSS)/(1<<20))
	}
	for i, p := range peers {
		if results[i].wrk != "" {
			fmt.Printf("\nwrk, %s:\n%s", p.name, results[i].wrk)
		}
	}
	for i, p := range peers {
		r := results[i]
		if r.network == "" {
			continue
		}
		fmt.Printf("\n%s, whole run (%d requests of all kinds):\n%s\n%s\n", p.name, r.requests, r.timing, r.network)
		exits := firstInt(r.timing, `; (\d+) exits`)
		interrupts := firstInt(r.timing, `(\d+) interrupts\)`)
		kicks := firstInt(r.network, `(\d+) notifications from the guest through the ioeventfd`)
		kickExits := firstInt(r.network, `(\d+) through exits`)
		irqs := firstInt(r.network, `(\d+) interrupts to the guest`)
		per := func(v int64) float64 { return float64(v) / float64(max(r.requests, 1)) }
		fmt.Printf("per request: %.4f exits, %.4f guest interrupts (all), %.4f NIC notifications (ioeventfd), %.4f notification exits, %.4f NIC interrupts\n",
			per(exits), per(interrupts), per(kicks), per(kickExits), per(irqs))
	}
	if len(results) > 1 && results[0].err == nil && results[1].err == nil {
		fmt.Printf("\npith / native: %.2fx requests per second, %.2fx bulk out, %.2fx bulk in\n",
			results[1].reqs/results[0].reqs, results[1].out/results[0].out, results[1].in/results[0].in)
	}
}

// measure starts p's server, measures it, and stops it.
func measure(p peer) (r result) {
	port, err := freePort()
	if err != nil {
		return result{err: err}
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := p.cmd(port)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return result{err: err}
	}
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conns}, Timeout: 10 * time.Second}
	for {
		resp, err := client.Get(base + "/")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			break
		}
		if time.Since(start) > 30*time.Second {
			return result{err: fmt.Errorf("no answer after 30 s: %v; %s", err, stderr.String())}
		}
		time.Sleep(time.Millisecond)
	}
	r.setup = time.Since(start)
	time.Sleep(2 * time.Second) // idle: what a server that has answered once holds
	r.idleRSS = treeRSS(cmd.Process.Pid)
	var reqs int64
	r.reqs, r.p50, r.p99, reqs = load(base + "/")
	r.requests += reqs
	if _, err := exec.LookPath("wrk"); err == nil {
		out, _ := exec.Command("wrk", "-t", "2", "-c", strconv.Itoa(*conns), "-d", duration.String(), "--latency", base+"/").CombinedOutput()
		r.wrk = string(out)
		r.requests += firstInt(r.wrk, `(\d+) requests in`)
	}
	if r.out, err = bulkOut(client, base, *bulk); err != nil {
		return result{err: fmt.Errorf("bulk out: %v", err)}
	}
	if r.in, err = bulkIn(client, base, *bulk); err != nil {
		return result{err: fmt.Errorf("bulk in: %v", err)}
	}
	r.requests += 2
	client.CloseIdleConnections()
	r.loadedRSS = treeRSS(cmd.Process.Pid)
	resp, err := client.Get(base + "/quit")
	if err == nil {
		resp.Body.Close()
		r.requests++
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(line, "pith: timing:") {
			r.timing = line
		}
		if strings.HasPrefix(line, "pith: network:") {
			r.network = line
		}
	}
	return r
}

// load runs *conns keep-alive clients against url for *duration.
func load(url string) (perSecond float64, p50, p99 time.Duration, count int64) {
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns}
	start := time.Now()
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: tr}
			var mine []time.Duration
			for ctx.Err() == nil {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
				resp, err := c.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	took := time.Since(start)
	tr.CloseIdleConnections()
	if len(lat) == 0 {
		return 0, 0, 0, 0
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return float64(len(lat)) / took.Seconds(), lat[len(lat)/2], lat[len(lat)*99/100], int64(len(lat))
}

func bulkOut(c *http.Client, base string, n int64) (float64, error) {
	c = &http.Client{Transport: c.Transport}
	t0 := time.Now()
	resp, err := c.Get(fmt.Sprintf("%s/bytes/%d", base, n))
	if err != nil {
		return 0, err
	}
	got, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || got != n {
		return 0, fmt.Errorf("%d of %d bytes: %v", got, n, err)
	}
	return float64(n) / time.Since(t0).Seconds() / 1e6, nil
}

func bulkIn(c *http.Client, base string, n int64) (float64, error) {
	c = &http.Client{Transport: c.Transport}
	t0 := time.Now()
	resp, err := c.Post(base+"/sink", "application/octet-stream", io.LimitReader(zeros{}, n))
	if err != nil {
		return 0, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != strconv.FormatInt(n, 10) {
		return 0, fmt.Errorf("the server read %q bytes of %d", body, n)
	}
	return float64(n) / time.Since(t0).Seconds() / 1e6, nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// treeRSS is the proportional resident memory (PSS) of pid and its descendants: for
// pith, the monitor with the guest memory it has touched, which its holder process maps
// too (RSS would count those pages twice).
func treeRSS(pid int) int64 {
	total := int64(0)
	var counted []int
	for _, p := range append([]int{pid}, descendants(pid)...) {
		// pith's holder shares the monitor's memory (CLONE_VM) and shows the same
		// pages: count each address space once.
		if slices.ContainsFunc(counted, func(q int) bool { return sameMemory(p, q) }) {
			continue
		}
		counted = append(counted, p)
		f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", p))
		if err != nil {
			continue
		}
		s := bufio.NewScanner(f)
		for s.Scan() {
			if v, ok := strings.CutPrefix(s.Text(), "Pss:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				total += kb << 10
			}
		}
		f.Close()
	}
	return total
}

// sameMemory reports whether processes a and b share one address space (kcmp KCMP_VM).
func sameMemory(a, b int) bool {
	const kcmpVM = 1
	r, _, errno := syscall.Syscall6(unix.SYS_KCMP, uintptr(a), uintptr(b), kcmpVM, 0, 0, 0)
	return errno == 0 && r == 0
}

func descendants(pid int) []int {
	var out []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
				out = append(out, descendants(c)...)
			}
		}
	}
	return out
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func firstInt(s, re string) int64 {
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseInt(m[1], 10, 64)
	return v
}

// runscBundle makes an OCI bundle running binary as its only file; bundleFor gives it
// the port to listen on.
func runscBundle(dir, binary string) (string, error) {
	b := filepath.Join(dir, "bundle")
	if err := os.MkdirAll(filepath.Join(b, "rootfs"), 0o755); err != nil {
		return "", err
	}
	data, err := os.ReadFile(binary)
	if err != nil {
		return "", err
	}
	return b, os.WriteFile(filepath.Join(b, "rootfs", "server"), data, 0o755)
}

func bundleFor(b string, port int) string {
	spec := fmt.Sprintf(`{"ociVersion":"1.0.2","process":{"args":["/server","-addr","127.0.0.1:%d"],"cwd":"/","user":{"uid":0,"gid":0}},
"root":{"path":"rootfs","readonly":true},"linux":{"namespaces":[{"type":"pid"},{"type":"mount"}]}}`, port)
	if err := os.WriteFile(filepath.Join(b, "config.json"), []byte(spec), 0o644); err != nil {
		fatal("%v", err)
	}
	return b
}

func fatal(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench/net: "+f+"\n", a...)
	os.Exit(1)
}
