// Command boot measures a pith guest's boot, side by side with a native exec of a Go
// hello world, and prints medians: `go run ./bench/boot` (after `make`).
//
// For each of -n runs it execs `pith hello --timing` with PITH_T0 set to
// the exec time, so pith reports when tier 1 reached main and when the guest exited,
// measured from the exec; the child's peak RSS comes from wait4.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 20, "runs per measurement")
	bin := flag.String("bin", "bin", "directory holding pith and pith-kernel")
	hello := flag.String("hello", "", "prebuilt native hello (default: build ./bench/hello)")
	flag.Parse()
	pith := filepath.Join(*bin, "pith")
	kernel := filepath.Join(*bin, "pith-kernel")
	if *hello == "" {
		*hello = filepath.Join(os.TempDir(), "pith-bench-hello")
		build := exec.Command("go", "build", "-o", *hello, "./bench/hello")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fatal("building hello: %v\n%s", err, out)
		}
	}

	timing := regexp.MustCompile(`tier-1 main ([0-9.]+[µm]?s), exit ([0-9.]+[µm]?s); (\d+) exits, (\d+) traps`)
	var mainT, exitT, wall, rss, exits, traps []float64
	for i := 0; i < *n; i++ {
		c := exec.Command(pith, "hello", "--timing")
		t0 := time.Now()
		c.Env = append(os.Environ(), "PITH_KERNEL="+kernel, "PITH_T0="+strconv.FormatInt(t0.UnixNano(), 10))
		out, err := c.CombinedOutput()
		w := time.Since(t0)
		if err != nil {
			fatal("pith: %v\n%s", err, out)
		}
		m := timing.FindSubmatch(out)
		if m == nil {
			fatal("no timing line in:\n%s", out)
		}
		mainT = append(mainT, ms(string(m[1])))
		exitT = append(exitT, ms(string(m[2])))
		exits = append(exits, num(string(m[3])))
		traps = append(traps, num(string(m[4])))
		wall = append(wall, float64(w.Microseconds())/1000)
		rss = append(rss, float64(c.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)/1024)
	}
	var nwall, nrss []float64
	for i := 0; i < *n; i++ {
		c := exec.Command(*hello)
		t0 := time.Now()
		if err := c.Run(); err != nil {
			fatal("hello: %v", err)
		}
		nwall = append(nwall, float64(time.Since(t0).Microseconds())/1000)
		nrss = append(nrss, float64(c.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)/1024)
	}
	// pith run of the same hello binary: the whole command, as a user times it.
	var runWall, runWall1 []float64
	for i := 0; i < *n; i++ {
		for _, cpus := range []string{"", "1"} {
			args := []string{"run", *hello}
			if cpus != "" {
				args = []string{"run", "--cpus", cpus, *hello}
			}
			c := exec.Command(pith, args...)
			c.Env = append(os.Environ(), "PITH_KERNEL="+kernel)
			t0 := time.Now()
			if out, err := c.CombinedOutput(); err != nil || string(out) != "hello\n" {
				fatal("pith run hello: %v: %q", err, out)
			}
			w := float64(time.Since(t0).Microseconds()) / 1000
			if cpus == "" {
				runWall = append(runWall, w)
			} else {
				runWall1 = append(runWall1, w)
			}
		}
	}
	st, _ := os.Stat(kernel)
	fmt.Printf("medians of %d runs on this machine\n", *n)
	fmt.Printf("%-44s %10s\n", "measurement", "median")
	fmt.Printf("%-44s %8.2fms\n", "pith: exec to tier-1 main()", median(mainT))
	fmt.Printf("%-44s %8.2fms\n", "pith: exec to guest exit (reported by pith)", median(exitT))
	fmt.Printf("%-44s %8.2fms\n", "pith: exec to process exit (wall)", median(wall))
	fmt.Printf("%-44s %8.2fms\n", "native Go hello: exec to exit (wall)", median(nwall))
	fmt.Printf("%-44s %8.2fms (%.1fx native)\n", "pith run hello, all host CPUs (wall)", median(runWall), median(runWall)/median(nwall))
	fmt.Printf("%-44s %8.2fms (%.1fx native)\n", "pith run --cpus 1 hello (wall)", median(runWall1), median(runWall1)/median(nwall))
	fmt.Printf("%-44s %8.1fMB\n", "pith: peak RSS of the pith process", median(rss))
	fmt.Printf("%-44s %8.1fMB\n", "native Go hello: peak RSS", median(nrss))
	fmt.Printf("%-44s %8.0f\n", "pith: exits to the monitor per boot", median(exits))
	fmt.Printf("%-44s %8.0f\n", "pith: tier-0 traps per boot", median(traps))
	fmt.Printf("%-44s %8.2fMB\n", "kernel ELF size", float64(st.Size())/1e6)
}

func ms(s string) float64 {
	d, err := time.ParseDuration(s)
	if err != nil {
		fatal("duration %q: %v", s, err)
	}
	return float64(d.Microseconds()) / 1000
}

func num(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fatal(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench/boot: "+f+"\n", a...)
	os.Exit(1)
}
