package cli

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/host/instance"
)

func TestParseRestartTakesDockersPolicies(t *testing.T) {
	for in, want := range map[string]instance.RestartPolicy{
		"no":             {Name: "no"},
		"always":         {Name: "always"},
		"unless-stopped": {Name: "always"},
		"on-failure":     {Name: "on-failure"},
		"on-failure:3":   {Name: "on-failure", MaxRetries: 3},
	} {
		if got, err := parseRestart(in); err != nil || got != want {
			t.Errorf("parseRestart(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"sometimes", "on-failure:x", "on-failure:-1", "always:2", ""} {
		if _, err := parseRestart(bad); err == nil {
			t.Errorf("parseRestart(%q) took it", bad)
		}
	}
}

func TestParseSignalTakesNamesAndNumbers(t *testing.T) {
	for in, want := range map[string]unix.Signal{"KILL": unix.SIGKILL, "SIGTERM": unix.SIGTERM, "usr1": unix.SIGUSR1, "9": unix.SIGKILL, "15": unix.SIGTERM} {
		if got, err := parseSignal(in); err != nil || got != want {
			t.Errorf("parseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"NOPE", "0", "65", ""} {
		if _, err := parseSignal(bad); err == nil {
			t.Errorf("parseSignal(%q) took it", bad)
		}
	}
}

func TestStatusTextIsDockers(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		st   instance.State
		want string
	}{
		{instance.State{Status: instance.StatusCreated}, "Created"},
		{instance.State{Status: instance.StatusRunning, StartedAt: now.Add(-3 * time.Second)}, "Up 3 seconds"},
		{instance.State{Status: instance.StatusRunning, StartedAt: now.Add(-90 * time.Second)}, "Up About a minute"},
		{instance.State{Status: instance.StatusExited, ExitCode: 0, FinishedAt: now.Add(-5 * time.Second)}, "Exited (0) 5 seconds ago"},
		{instance.State{Status: instance.StatusExited, ExitCode: 137, FinishedAt: now.Add(-3 * time.Hour)}, "Exited (137) 3 hours ago"},
		{instance.State{Status: instance.StatusRestarting, ExitCode: 1, FinishedAt: now.Add(-time.Second)}, "Restarting (1) 1 second ago"},
	} {
		if got := statusText(&instance.Instance{State: tc.st}, now); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.st, got, tc.want)
		}
	}
}

// The monitor re-runs pith run with the flags given, so each must come back as it went in.
func TestRunFlagsRoundTrip(t *testing.T) {
	c := newRunCommand()
	args := []string{"-d", "--name", "web", "--rm", "-p", "8080:80", "-p", "9090:90/udp", "-e", "A=1,2", "-e", "B=x y",
		"-v", "/tmp:/data:rw", "-m", "512m", "--cpus", "2", "-w", "/data", "--net", "none", "app", "-x", "--y"}
	if err := c.Flags().Parse(args); err != nil {
		t.Fatal(err)
	}
	flags := runFlags(c)
	got := strings.Join(flags, " ")
	for _, want := range []string{"--publish=8080:80", "--publish=9090:90/udp", "--env=A=1,2", "--env=B=x y", "--volume=/tmp:/data:rw", "--memory=512m", "--cpus=2", "--workdir=/data", "--net=none"} {
		if !strings.Contains(got, want) {
			t.Errorf("runFlags lacks %s: %s", want, got)
		}
	}
	for _, gone := range []string{"detach", "name", "rm"} {
		if strings.Contains(got, "--"+gone+"=") {
			t.Errorf("runFlags keeps --%s: %s", gone, got)
		}
	}
	again := newRunCommand()
	if err := again.Flags().Parse(append(flags, "--", "app", "-x", "--y")); err != nil {
		t.Fatal(err)
	}
	if e, _ := again.Flags().GetStringArray("env"); strings.Join(e, "|") != "A=1,2|B=x y" {
		t.Errorf("-e came back as %q", e)
	}
	if rest := again.Flags().Args(); strings.Join(rest, " ") != "app -x --y" {
		t.Errorf("the app's arguments came back as %q", rest)
	}
}
