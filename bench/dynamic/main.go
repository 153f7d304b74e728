// Command dynamic measures dynamically linked programs of a Debian 12 tree
// (tools/debian-rootfs.sh) side by side in one run: the wall time from start to exit of
// `python3 -c pass`, `sh -c true` and `sh -c (true)` (a fork) natively in a chroot, inside pith (`pith run
// --rootfs`) and under gVisor's runsc on the same tree where it is built
// (bench/gvisor.sh); then the host memory of -instances unikernels running the same
// Python program at once, per unikernel: RSS and PSS of each monitor process
// (/proc/PID/smaps_rollup), with shared libraries from the page cache (the file window)
// and copied (PITH_FILE_WINDOW=off). Needs root (chroot).
// `make && go run ./bench/dynamic [-root DIR]`
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pithvm/pith/bench/peers"
)

func main() {
	n := flag.Int("n", 10, "runs per measurement")
	bin := flag.String("bin", "bin", "directory holding pith and pith-kernel")
	root := flag.String("root", "", "the Debian tree (default: tools/debian-rootfs.sh's)")
	instances := flag.Int("instances", 10, "unikernels running at once for the memory figures")
	flag.Parse()
	pith, _ := filepath.Abs(filepath.Join(*bin, "pith"))
	if *root == "" {
		out, err := exec.Command("tools/debian-rootfs.sh").Output()
		if err != nil {
			fatal("tools/debian-rootfs.sh: %v", err)
		}
		*root = strings.TrimSpace(string(out))
	}
	dir, _ := os.MkdirTemp("", "pith-bench-dynamic-")
	defer os.RemoveAll(dir)
	runsc, runscErr := peers.Runsc()

	fmt.Printf("start to exit, median of %d (ms)    native chroot   pith run --rootfs   gVisor runsc\n", *n)
	// (true) is sh -c true and one fork without exec: the child a copy of the guest.
	for _, cmd := range [][]string{{"python3", "-c", "pass"}, {"sh", "-c", "true"}, {"sh", "-c", "(true)"}} {
		native := times(*n, append([]string{"chroot", *root}, cmd...))
		inside := times(*n, append([]string{pith, "run", "--rootfs", *root}, cmd...))
		gvisor := "-"
		if runscErr == nil {
			bundle := bundleFor(runsc, dir, *root, cmd)
			var g []float64
			for i := 0; i < *n; i++ {
				name := fmt.Sprintf("pith-bench-dyn-%d-%d", os.Getpid(), i)
				g = append(g, wall([]string{runsc, "--root", filepath.Join(dir, "runsc-state"), "--ignore-cgroups",
					"--platform=systrap", "--network=none", "run", "--bundle", bundle, name}))
			}
			gvisor = fmt.Sprintf("%.1f", median(g))
		}
		fmt.Printf("  %-34s %12.1f %19.1f %14s\n", strings.Join(cmd, " "), median(native), median(inside), gvisor)
	}
	if runscErr != nil {
		fmt.Printf("  (no gVisor peer: %v)\n", runscErr)
	}
	memory(pith, *root, *instances, "libraries from the page cache", nil)
	memory(pith, *root, *instances, "libraries copied (PITH_FILE_WINDOW=off)", []string{"PITH_FILE_WINDOW=off"})
}

// memory starts count unikernels of the same Python program at once, with extra
// environment env, and prints each monitor's RSS and PSS once all are running.
func memory(pith, root string, count int, what string, env []string) {
	var cmds []*exec.Cmd
	defer func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}()
	for i := 0; i < count; i++ {
		c := exec.Command(pith, "run", "--rootfs", root, "python3", "-c", "import sys, time; print('up', flush=True); time.sleep(600)")
		c.Env = append(os.Environ(), env...)
		out, err := c.StdoutPipe()
		if err != nil {
			fatal("%v", err)
		}
		if err := c.Start(); err != nil {
			fatal("%v", err)
		}
		cmds = append(cmds, c)
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "up\n" {
			fatal("unikernel %d did not start: %q, %v", i, line, err)
		}
	}
	time.Sleep(time.Second)
	fmt.Printf("\n%d unikernels of python3 at once, %s: host memory of each monitor (MiB)\n  %-10s %8s %8s\n", count, what, "unikernel", "RSS", "PSS")
	var rss, pss float64
	for i, c := range cmds {
		r, p := smaps(c.Process.Pid)
		rss, pss = rss+r, pss+p
		fmt.Printf("  %-10d %8.1f %8.1f\n", i, r, p)
	}
	fmt.Printf("  %-10s %8.1f %8.1f\n  %-10s %8.1f %8.1f\n", "total", rss, pss, "mean", rss/float64(count), pss/float64(count))
}

// smaps is the RSS and PSS of process pid, in MiB.
func smaps(pid int) (rss, pss float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		fatal("%v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		var kb float64
		if _, err := fmt.Sscanf(l, "Rss: %f kB", &kb); err == nil {
			rss = kb / 1024
		}
		if _, err := fmt.Sscanf(l, "Pss: %f kB", &kb); err == nil {
			pss = kb / 1024
		}
	}
	return rss, pss
}

// bundleFor makes an OCI bundle running cmd on root, read-only, for runsc.
func bundleFor(runsc, dir, root string, cmd []string) string {
	bundle := filepath.Join(dir, "bundle-"+cmd[0])
	os.RemoveAll(bundle) // sh -c true's, for sh -c (true)
	os.MkdirAll(bundle, 0o755)
	spec := exec.Command(runsc, "spec")
	spec.Dir = bundle
	if out, err := spec.CombinedOutput(); err != nil {
		fatal("making a bundle: %v: %s", err, out)
	}
	cfg, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	c := strings.Replace(string(cfg), `"terminal": true`, `"terminal": false`, 1)
	c = strings.Replace(c, `"path": "rootfs"`, fmt.Sprintf("%q: %q", "path", root), 1)
	c = strings.Replace(c, `"sh"`, `"`+strings.Join(cmd, `", "`)+`"`, 1)
	os.WriteFile(filepath.Join(bundle, "config.json"), []byte(c), 0o644)
	return bundle
}

func times(n int, cmd []string) []float64 {
	var v []float64
	for i := 0; i < n; i++ {
		v = append(v, wall(cmd))
	}
	return v
}

func wall(cmd []string) float64 {
	t0 := time.Now()
	if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
		fatal("%v: %v\n%s", cmd, err, out)
	}
	return float64(time.Since(t0).Microseconds()) / 1000
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func fatal(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench/dynamic: "+f+"\n", a...)
	os.Exit(1)
}
