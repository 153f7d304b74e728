// Package selftest is the kernel's self-test: tier-1 checks that the Go runtime works on
// top of tier 0 (goroutines, channels, GC, timers, preemption, clocks, panics), printing a
// report. It is ordinary Go and runs natively too (go test), so a failure can be told
// apart from a tier-0 bug.
package selftest

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Config sets what the checks expect.
type Config struct {
	Memory uint64 // guest memory in bytes; the allocation churn is a multiple of it
	CPUs   int    // expected runtime.NumCPU and GOMAXPROCS
	Inject string // name of a check to fail on purpose
	Only   string // if set, run only this check
	// Stats, if set, returns the tier-0 trap and monitor exit counts to report.
	Stats func() (traps, exits uint64, ok bool)
}

// Check is one self-test check.
type Check struct {
	Name string
	Run  func(Config) (detail string, err error)
}

// Checks lists the checks in the order they run.
var Checks = []Check{
	{"goroutines", checkGoroutines},
	{"gc-churn", checkChurn},
	{"sleep", checkSleep},
	{"ticker", checkTicker},
	{"cpu-bound-vs-ticker", checkStarvation},
	{"monotonic", checkMonotonic},
	{"clocks", checkClocks},
	{"panic-recover", checkRecover},
	{"cpus", checkCPUs},
}

// Run runs every check, writes the report to w and reports whether all passed.
func Run(w io.Writer, c Config) bool {
	ok := true
	start := time.Now()
	for _, ch := range Checks {
		if c.Only != "" && c.Only != ch.Name {
			continue
		}
		t0 := time.Now()
		detail, err := ch.Run(c)
		if err == nil && c.Inject == ch.Name {
			err = errors.New("failure injected with --inject-failure")
		}
		status := "ok  "
		if err != nil {
			status, ok = "FAIL", false
			detail = err.Error()
		}
		fmt.Fprintf(w, "%s %-20s %8.1fms  %s\n", status, ch.Name, float64(time.Since(t0).Microseconds())/1000, detail)
	}
	if c.Stats != nil {
		if traps, exits, got := c.Stats(); got {
			fmt.Fprintf(w, "info traps=%d exits=%d\n", traps, exits)
		}
	}
	fmt.Fprintf(w, "info syscall round trip %v (getppid), clock read %v (time.Now)\n", syscallCost(), clockCost())
	verdict := "PASS"
	if !ok {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "%s selftest in %.1fms\n", verdict, float64(time.Since(start).Microseconds())/1000)
	return ok
}

// syscallCost is the mean time of one getppid round trip.
func syscallCost() time.Duration {
	const n = 20000
	t0 := time.Now()
	for i := 0; i < n; i++ {
		syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
	}
	return time.Since(t0) / n
}

// clockCost is the mean time of one time.Now.
func clockCost() time.Duration {
	const n = 20000
	t0 := time.Now()
	for i := 0; i < n; i++ {
		time.Now()
	}
	return time.Since(t0) / n
}

// checkGoroutines passes a token around a ring of 10,000 goroutines, several laps.
func checkGoroutines(Config) (string, error) {
	const n, laps = 10000, 5
	first := make(chan int)
	in := first
	for i := 0; i < n; i++ {
		out := make(chan int)
		go func(in <-chan int, out chan<- int) {
			for v := range in {
				out <- v + 1
			}
			close(out)
		}(in, out)
		in = out
	}
	last := in
	for lap := 0; lap < laps; lap++ {
		first <- 0
		if got := <-last; got != n {
			return "", fmt.Errorf("token came back as %d, want %d", got, n)
		}
	}
	close(first)
	<-last
	return fmt.Sprintf("%d goroutines, %d laps, %d messages", n, laps, n*laps), nil
}

// checkChurn allocates several times the guest's memory while keeping a live set whose
// contents must survive every collection.
func checkChurn(c Config) (string, error) {
	total := 4 * c.Memory
	if total == 0 {
		total = 1 << 30
	}
	const chunk = 256 << 10
	const live = 64
	keep := make([][]byte, live)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := uint64(0); i < total/chunk; i++ {
		b := make([]byte, chunk)
		b[0], b[len(b)-1] = byte(i), byte(i>>8)
		slot := i % live
		if old := keep[slot]; old != nil {
			j := i - live
			if old[0] != byte(j) || old[len(old)-1] != byte(j>>8) {
				return "", fmt.Errorf("live buffer %d corrupted", j)
			}
		}
		keep[slot] = b
	}
	runtime.ReadMemStats(&after)
	gcs := after.NumGC - before.NumGC
	if gcs == 0 {
		return "", errors.New("no garbage collection ran")
	}
	return fmt.Sprintf("%d MiB allocated, %d GCs, heap %d MiB", total>>20, gcs, after.HeapAlloc>>20), nil
}

// checkSleep measures time.Sleep against the monotonic clock. Each duration is tried up to
// three times and its least overshoot counts: a vCPU its host preempts for tens of
// milliseconds (CI's nested guest on a loaded host) oversleeps once, a lost or late
// wake-up every time.
func checkSleep(Config) (string, error) {
	var worst time.Duration
	for _, d := range []time.Duration{time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond} {
		best := time.Duration(-1)
		for try := 0; try < 3 && (best < 0 || best > 50*time.Millisecond); try++ {
			t0 := time.Now()
			time.Sleep(d)
			got := time.Since(t0)
			if got < d {
				return "", fmt.Errorf("Sleep(%v) returned after %v", d, got)
			}
			if late := got - d; best < 0 || late < best {
				best = late
			}
		}
		worst = max(worst, best)
	}
	if worst > 50*time.Millisecond {
		return "", fmt.Errorf("a sleep overshot by %v three times in a row", worst)
	}
	return fmt.Sprintf("worst overshoot %v", worst.Round(time.Microsecond)), nil
}

// checkTicker checks a 5 ms ticker's average period over 40 ticks.
func checkTicker(Config) (string, error) {
	const period, ticks = 5 * time.Millisecond, 40
	tk := time.NewTicker(period)
	defer tk.Stop()
	t0 := time.Now()
	for i := 0; i < ticks; i++ {
		<-tk.C
	}
	avg := time.Since(t0) / ticks
	if avg < period*9/10 || avg > period*3/2 {
		return "", fmt.Errorf("average tick %v, want %v", avg, period)
	}
	return fmt.Sprintf("average period %v (want %v)", avg.Round(time.Microsecond), period), nil
}

//go:noinline
func spin(x uint64) uint64 { return x*6364136223846793005 + 1442695040888963407 }

// checkStarvation runs CPU-bound goroutines on every P while a ticker must keep ticking.
func checkStarvation(Config) (string, error) {
	var stop atomic.Bool
	var wg sync.WaitGroup
	var sink atomic.Uint64
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := uint64(1)
			for !stop.Load() {
				x = spin(x)
			}
			sink.Add(x)
		}()
	}
	const period, ticks = 5 * time.Millisecond, 20
	tk := time.NewTicker(period)
	t0 := time.Now()
	var worst time.Duration
	last := t0
	for i := 0; i < ticks; i++ {
		<-tk.C
		now := time.Now()
		if gap := now.Sub(last); gap > worst {
			worst = gap
		}
		last = now
	}
	tk.Stop()
	stop.Store(true)
	wg.Wait()
	if worst > 100*time.Millisecond {
		return "", fmt.Errorf("ticker starved: longest gap %v", worst)
	}
	return fmt.Sprintf("%d ticks in %v, longest gap %v", ticks, time.Since(t0).Round(time.Millisecond), worst.Round(time.Microsecond)), nil
}

// checkMonotonic reads the clock from several goroutines and checks it never goes back.
func checkMonotonic(Config) (string, error) {
	const readers, reads = 4, 50000
	errs := make(chan error, readers)
	for r := 0; r < readers; r++ {
		go func() {
			prev := time.Now()
			for i := 0; i < reads; i++ {
				now := time.Now()
				if now.Before(prev) {
					errs <- fmt.Errorf("time went back by %v", prev.Sub(now))
					return
				}
				prev = now
				if i%1000 == 0 {
					runtime.Gosched()
				}
			}
			errs <- nil
		}()
	}
	for r := 0; r < readers; r++ {
		if err := <-errs; err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d reads", readers*reads), nil
}

// checkClocks checks the wall clock agrees with the monotonic one, and, inside pith, that
// reading the clock takes no trap (the vDSO serves it).
func checkClocks(c Config) (string, error) {
	now := time.Now()
	if now.Year() < 2025 {
		return "", fmt.Errorf("wall clock says %v", now)
	}
	// Each sample reads both clocks (time.Now), but a vCPU the host preempts between the
	// two reads shows a drift that is not the clocks': a wrong clock drifts on every
	// try, a preemption on one.
	var d time.Duration
	for try := 0; try < 5; try++ {
		t0 := time.Now()
		time.Sleep(10 * time.Millisecond)
		t1 := time.Now()
		if d = t1.Round(0).Sub(t0.Round(0)) - t1.Sub(t0); d <= time.Millisecond && d >= -time.Millisecond {
			break
		}
	}
	if d > time.Millisecond || d < -time.Millisecond {
		return "", fmt.Errorf("wall and monotonic clocks drifted %v apart in 10ms, five times", d)
	}
	detail := fmt.Sprintf("wall clock %s", now.UTC().Format(time.RFC3339))
	if c.Stats != nil {
		const reads = 10000
		before, _, _ := c.Stats()
		for i := 0; i < reads; i++ {
			time.Now()
		}
		after, _, _ := c.Stats()
		if after-before > reads/10 {
			return "", fmt.Errorf("%d clock reads took %d traps: the vDSO is not in use", reads, after-before)
		}
		detail += fmt.Sprintf("; %d reads took %d traps", reads, after-before)
	}
	return detail, nil
}

// checkRecover panics (explicitly and with a runtime error) and recovers.
func checkRecover(Config) (string, error) {
	msg := func(f func()) (v any) {
		defer func() { v = recover() }()
		f()
		return nil
	}
	if v := msg(func() { panic("boom") }); v != "boom" {
		return "", fmt.Errorf("recovered %v, want boom", v)
	}
	var s []int
	i := 3
	v := msg(func() { _ = s[i] })
	if _, ok := v.(runtime.Error); !ok {
		return "", fmt.Errorf("index out of range recovered %v, want a runtime.Error", v)
	}
	// A nil dereference is a hardware fault turned into SIGSEGV, then into a panic.
	var p *struct{ x [64]int }
	v = msg(func() { p.x[7] = 1 })
	err, ok := v.(runtime.Error)
	if !ok || !strings.Contains(err.Error(), "nil pointer dereference") {
		return "", fmt.Errorf("nil dereference recovered %v, want a nil pointer runtime.Error", v)
	}
	return "recovered: boom; index out of range; " + err.Error(), nil
}

// checkCPUs compares NumCPU and GOMAXPROCS with the configured vCPUs.
func checkCPUs(c Config) (string, error) {
	n, p := runtime.NumCPU(), runtime.GOMAXPROCS(0)
	if c.CPUs != 0 && (n != c.CPUs || p != c.CPUs) {
		return "", fmt.Errorf("NumCPU %d, GOMAXPROCS %d, want %d", n, p, c.CPUs)
	}
	return fmt.Sprintf("NumCPU %d, GOMAXPROCS %d", n, p), nil
}
