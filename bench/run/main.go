// Command run compares `pith run` with a native exec of the same static binaries, side by
// side in one run (medians of -n): a Go hello world's wall time (also under runc, under
// gVisor's runsc and as /init of a QEMU-TCG Linux microVM, where installed:
// bench/gvisor.sh, bench/qemu-kernel.sh), the cost of a trivial system call (getppid,
// which pith answers in the app's address space), of one tier 0 serves (gettid) and of
// one tier 1 serves (rt_sigaction, a fast call from Go's syscall package: no trap), a
// CPU-bound loop and stdout throughput.
// `make && go run ./bench/run`
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pithvm/pith/bench/peers"
)

func main() {
	n := flag.Int("n", 20, "runs per measurement")
	bin := flag.String("bin", "bin", "directory holding pith and pith-kernel")
	apps := flag.String("apps", "", "directory with prebuilt hello and work (default: build them)")
	flag.Parse()
	pith, _ := filepath.Abs(filepath.Join(*bin, "pith"))
	dir, _ := os.MkdirTemp("", "pith-bench-")
	defer os.RemoveAll(dir)
	hello, work := filepath.Join(dir, "hello"), filepath.Join(dir, "work")
	if *apps != "" {
		hello, work = filepath.Join(*apps, "hello"), filepath.Join(*apps, "work")
	}
	for out, pkg := range map[string]string{hello: "./bench/hello", work: "./bench/apps/work"} {
		if *apps != "" {
			break
		}
		c := exec.Command("go", "build", "-o", out, pkg)
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := c.CombinedOutput(); err != nil {
			fatal("building %s: %v\n%s", pkg, err, b)
		}
	}
	runs := func(cmd ...string) (walls []float64, outs []float64) {
		for i := 0; i < *n; i++ {
			t0 := time.Now()
			out, err := exec.Command(cmd[0], cmd[1:]...).Output()
			walls = append(walls, float64(time.Since(t0).Microseconds())/1000)
			if err != nil {
				fatal("%v: %v", cmd, err)
			}
			if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil {
				outs = append(outs, v)
			}
		}
		return
	}
	nh, _ := runs(hello)
	ph, _ := runs(pith, "run", hello)
	wh := warmRuns(*n, dir, pith, hello)
	var rh, gh []float64
	bundle, ok := runcBundle(dir, hello)
	if ok {
		for i := 0; i < *n; i++ {
			name := fmt.Sprintf("pith-bench-%d-%d", os.Getpid(), i)
			rh = append(rh, wallOf("runc", "--root", filepath.Join(dir, "runc-state"), "run", "--bundle", bundle, name))
		}
	}
	runsc, runscErr := peers.Runsc()
	if ok && runscErr == nil {
		for i := 0; i < *n; i++ {
			name := fmt.Sprintf("pith-bench-%d-%d", os.Getpid(), i)
			gh = append(gh, wallOf(runsc, "--root", filepath.Join(dir, "runsc-state"), "--ignore-cgroups",
				"--platform=systrap", "--network=none", "run", "--bundle", bundle, name))
		}
	}
	var qh []float64
	kernel, qemuErr := qemuKernel()
	if qemuErr == nil {
		initrd := filepath.Join(dir, "init.cpio")
		if err := initramfs(initrd, hello); err != nil {
			fatal("initramfs: %v", err)
		}
		for i := 0; i < min(*n, 3); i++ { // seconds each: TCG
			cmd := qemuCommand(kernel, initrd)
			// A TCG boot now and then never finishes: such a run is reported, not waited for.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			t0 := time.Now()
			out, err := exec.CommandContext(ctx, cmd[0], cmd[1:]...).CombinedOutput()
			cancel()
			if err != nil || !strings.Contains(string(out), "hello") {
				qemuErr = fmt.Errorf("a QEMU run failed (%v) after %v; output: %.300q", err, time.Since(t0).Round(time.Millisecond), out)
				qh = nil
				break
			}
			qh = append(qh, float64(time.Since(t0).Microseconds())/1000)
		}
	}
	_, ns := runs(work, "syscall")
	_, ps := runs(pith, "run", work, "syscall")
	_, nt := runs(work, "gettid")
	_, pt := runs(pith, "run", work, "gettid")
	_, na := runs(work, "sigaction")
	_, pa := runs(pith, "run", work, "sigaction")
	_, nc := runs(work, "cpu")
	_, pc := runs(pith, "run", work, "cpu")
	rate := func(cmd ...string) []float64 {
		var v []float64
		for i := 0; i < 5; i++ {
			var stderr strings.Builder
			c := exec.Command(cmd[0], cmd[1:]...) // stdout is /dev/null
			c.Stderr = &stderr
			if err := c.Run(); err != nil {
				fatal("%v: %v", cmd, err)
			}
			if r, err := strconv.ParseFloat(strings.TrimSpace(stderr.String()), 64); err == nil {
				v = append(v, r)
			}
		}
		return v
	}
	no := rate(work, "output")
	po := rate(pith, "run", work, "output")
	fmt.Printf("medians of %d runs on this machine\n", *n)
	fmt.Printf("%-44s %12s %12s %9s\n", "", "native", "pith run", "ratio")
	row := func(name, unit string, a, b []float64) {
		fmt.Printf("%-44s %10.2f%s %10.2f%s %8.2fx\n", name, median(a), unit, median(b), unit, median(b)/median(a))
	}
	row("hello world, exec to exit", "ms", nh, ph)
	row("  (pith run, warm start: PITH_WARM=1)", "ms", nh, wh)
	if rh != nil {
		row("  (runc run of the same hello)", "ms", nh, rh)
	} else {
		fmt.Println("  (runc not installed: apt-get install runc for that peer)")
	}
	if gh != nil {
		row("  (gVisor runsc, systrap, same bundle)", "ms", nh, gh)
	} else {
		fmt.Printf("  (no gVisor peer: %v)\n", runscErr)
	}
	if qh != nil {
		row("  (Linux microVM, QEMU TCG, as /init)", "ms", nh, qh)
	} else {
		fmt.Printf("  (no QEMU peer: %v)\n", qemuErr)
	}
	row("getppid (answered in the app: no trap)", "ns", ns, ps)
	row("gettid (tier 0 serves it: one trap)", "ns", nt, pt)
	row("rt_sigaction (tier 1 serves it: a fast call, no trap)", "ns", na, pa)
	row("CPU-bound (sha256 of 300 MiB)", "us", nc, pc)
	row("stdout, 4 KiB writes to /dev/null", "MB/s", no, po)
}

// warmRuns times `pith run hello` with warm starts (PITH_WARM=1, host/cli/warm.go): each
// run is handed to a VM booted in advance. A pause before each lets the VM the previous
// run's server started finish booting; the servers left are stopped at the end.
func warmRuns(n int, dir, pith, hello string) []float64 {
	base := filepath.Join(dir, "warm")
	env := append(os.Environ(), "PITH_WARM=1", "XDG_RUNTIME_DIR="+base, "PITH_WARM_IDLE=60s")
	defer func() {
		socks, _ := filepath.Glob(filepath.Join(base, "*", "warm", "*.sock"))
		for _, s := range socks {
			if pid, err := strconv.Atoi(strings.Split(filepath.Base(s), ".")[1]); err == nil {
				syscall.Kill(pid, syscall.SIGTERM)
			}
		}
	}()
	var walls []float64
	for i := -1; i < n; i++ { // the first run boots cold and starts the first server
		time.Sleep(100 * time.Millisecond)
		c := exec.Command(pith, "run", hello)
		c.Env = env
		t0 := time.Now()
		if out, err := c.CombinedOutput(); err != nil {
			fatal("warm pith run: %v\n%s", err, out)
		}
		if i >= 0 {
			walls = append(walls, float64(time.Since(t0).Microseconds())/1000)
		}
	}
	return walls
}

// runcBundle makes an OCI bundle whose read-only rootfs holds only the binary, as
// ../shared/HOST.md describes, if runc is installed.
func runcBundle(dir, binary string) (string, bool) {
	if _, err := exec.LookPath("runc"); err != nil {
		return "", false
	}
	bundle := filepath.Join(dir, "bundle")
	rootfs := filepath.Join(bundle, "rootfs")
	os.MkdirAll(rootfs, 0o755)
	data, err := os.ReadFile(binary)
	if err != nil || os.WriteFile(filepath.Join(rootfs, "app"), data, 0o755) != nil {
		return "", false
	}
	spec := exec.Command("runc", "spec")
	spec.Dir = bundle
	if spec.Run() != nil {
		return "", false
	}
	cfg, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return "", false
	}
	c := strings.Replace(string(cfg), `"terminal": true`, `"terminal": false`, 1)
	c = strings.Replace(c, `"sh"`, `"/app"`, 1)
	if os.WriteFile(filepath.Join(bundle, "config.json"), []byte(c), 0o644) != nil {
		return "", false
	}
	return bundle, true
}

func wallOf(name string, args ...string) float64 {
	t0 := time.Now()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		fatal("%s %v: %v\n%s", name, args, err, out)
	}
	return float64(time.Since(t0).Microseconds()) / 1000
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func fatal(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench/run: "+f+"\n", a...)
	os.Exit(1)
}
