package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/host/instance"
)

// The commands that manage unikernels run with -d (ps, logs, stop, kill, start, restart,
// wait, rm, inspect, stats) share these.

// openInstances opens the state of the unikernels run with -d.
func openInstances() (*instance.Store, error) { return instance.Open(instance.RuntimeDir()) }

// eachRef runs f on the unikernel each ref names, as Docker's commands that take several
// do: every one is tried, an error is printed for each that fails, and the command fails
// if any did.
func eachRef(refs []string, f func(*instance.Store, *instance.Instance) error) error {
	store, err := openInstances()
	if err != nil {
		return err
	}
	failed := 0
	for _, ref := range refs {
		inst, err := store.Get(ref)
		if err == nil {
			err = f(store, inst)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "pith: %v\n", err)
			failed++
			continue
		}
		fmt.Println(ref)
	}
	if failed > 0 {
		return statusError(1)
	}
	return nil
}

// waitGone waits up to d for the unikernel's monitor to end; it reports whether it did.
func waitGone(inst *instance.Instance, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for inst.Live() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// monitorPID is the PID of the unikernel's living monitor, waiting for one that is
// starting to say it (0: none lives).
func monitorPID(store *instance.Store, inst *instance.Instance) int {
	for deadline := time.Now().Add(5 * time.Second); inst.Live(); time.Sleep(20 * time.Millisecond) {
		if cur, err := store.Reload(inst); err == nil && cur.State.Pid != 0 {
			return cur.State.Pid
		}
		if time.Now().After(deadline) {
			break
		}
	}
	return 0
}

// stopInstance is pith stop: SIGTERM to the monitor (which passes it to the app), SIGKILL
// after timeout. Stopping one that is not running does nothing, as in Docker.
func stopInstance(store *instance.Store, inst *instance.Instance, timeout time.Duration) error {
	if !inst.Live() {
		return nil
	}
	if err := inst.StopRequested(); err != nil {
		return err
	}
	pid := monitorPID(store, inst)
	if pid == 0 {
		return nil
	}
	unix.Kill(pid, unix.SIGTERM)
	if waitGone(inst, timeout) {
		return nil
	}
	unix.Kill(pid, unix.SIGKILL)
	if !waitGone(inst, 10*time.Second) {
		return fmt.Errorf("%s: the monitor (PID %d) did not end after SIGKILL", inst.Config.Name, pid)
	}
	store.Reload(inst) // records the exit of the killed monitor
	return nil
}

// parseSignal reads a signal as Docker's kill -s takes it: KILL, SIGKILL or 9.
func parseSignal(s string) (unix.Signal, error) {
	if v, err := strconv.Atoi(s); err == nil && v >= 1 && v <= 64 {
		return unix.Signal(v), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("-s %s: not a signal (give a name, as TERM or SIGKILL, or a number)", s)
}

// humanDuration is Docker's rendering of a duration in ps: "3 seconds", "About a minute".
func humanDuration(d time.Duration) string {
	s := int(d.Seconds())
	switch {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	m := int(d.Minutes())
	switch {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	h := int(d.Hours() + 0.5)
	switch {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	}
	return fmt.Sprintf("%d years", h/24/365)
}

// statusText is ps's STATUS column, as Docker writes it.
func statusText(inst *instance.Instance, now time.Time) string {
	st := inst.State
	switch st.Status {
	case instance.StatusRunning:
		return "Up " + humanDuration(now.Sub(st.StartedAt))
	case instance.StatusRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, humanDuration(now.Sub(st.FinishedAt)))
	case instance.StatusExited:
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, humanDuration(now.Sub(st.FinishedAt)))
	}
	return "Created"
}
