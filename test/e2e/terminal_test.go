package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/test/testenv"
)

// A terminal session: a command on a new pseudo-terminal, its controlling terminal, and
// what the terminal shows (the program's output and the terminal's echo of what is typed).
type terminalSession struct {
	t      *testing.T
	ctl    *os.File
	cmd    *exec.Cmd
	shown  chan []byte // the reader's chunks
	screen bytes.Buffer
}

// onTerminal starts args on a new pseudo-terminal of 33 rows and 101 columns, in a
// session of their own, as a terminal emulator starts a shell.
func onTerminal(t *testing.T, env []string, args ...string) *terminalSession {
	t.Helper()
	ctl, tty := testenv.OpenPTY(t)
	if err := unix.IoctlSetWinsize(int(ctl.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 101}); err != nil {
		t.Fatal(err)
	}
	s := &terminalSession{t: t, ctl: ctl, shown: make(chan []byte, 64)}
	s.cmd = exec.Command(args[0], args[1:]...)
	s.cmd.Env = env
	s.cmd.Stdin, s.cmd.Stdout, s.cmd.Stderr = tty, tty, tty
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	// Ctrl-C's and Ctrl-\'s signals as a terminal's shell leaves them, whatever this test
	// inherited (a command a script starts in the background ignores them): caught here
	// while the command starts, they are at their defaults in it.
	caught := make(chan os.Signal, 1)
	signal.Notify(caught, syscall.SIGINT, syscall.SIGQUIT)
	err := s.cmd.Start()
	signal.Stop(caught)
	tty.Close() // the command's now: the controller reads EIO once the command's copies close
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cmd.Process.Kill() })
	go func() {
		defer close(s.shown)
		for {
			b := make([]byte, 4096)
			n, err := ctl.Read(b)
			if n > 0 {
				s.shown <- b[:n]
			}
			if err != nil { // EIO once the last holder of the terminal has closed it
				return
			}
		}
	}()
	return s
}

// waitFor waits until the terminal has shown text n times.
func (s *terminalSession) waitFor(text string, n int) {
	s.t.Helper()
	timeout := time.After(time.Minute)
	for strings.Count(s.screen.String(), text) < n {
		select {
		case b, ok := <-s.shown:
			if !ok {
				s.t.Fatalf("the terminal closed before showing %q %d times: %q", text, n, s.screen.String())
			}
			s.screen.Write(b)
		case <-timeout:
			s.t.Fatalf("after a minute the terminal has not shown %q %d times: %q", text, n, s.screen.String())
		}
	}
}

// end waits for the command's exit and the terminal's last output.
func (s *terminalSession) end() (screen string, code int) {
	s.t.Helper()
	timeout := time.After(2 * time.Minute)
	for done := false; !done; {
		select {
		case b, ok := <-s.shown:
			s.screen.Write(b)
			done = !ok
		case <-timeout:
			s.cmd.Process.Kill()
			s.t.Fatalf("%v still running after 2 minutes; the terminal showed %q", s.cmd.Args, s.screen.String())
		}
	}
	err := s.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return s.screen.String(), ee.ExitCode()
	} else if err != nil {
		s.t.Fatal(err)
	}
	return s.screen.String(), 0
}

// bracketedPaste removes what readline writes, with TERM=xterm, to turn bracketed paste
// on at a prompt and off after a line.
var bracketedPaste = strings.NewReplacer("\x1b[?2004h", "", "\x1b[?2004l\r", "")

// A terminal step: wait until the terminal shows text n times, then type input or make
// the terminal's window 24 by 80.
type terminalStep struct {
	text   string
	n      int
	input  string
	resize bool
}

// Programs of a Debian root file system on a terminal, inside pith as natively in a
// chroot: what the terminal shows must be the same, character for character. The
// terminal is pith's own (isatty, termios, the window size and its SIGWINCH, /dev/tty);
// what is typed reaches the program that reads it, a program a shell starts included;
// Ctrl-C interrupts an interactive shell without ending it.
func TestTerminal(t *testing.T) {
	testenv.RequireKVM(t)
	root := testenv.DebianRoot(t)
	pith, kernel := testenv.Build(t)
	for _, tc := range []struct {
		name  string
		args  []string
		steps []terminalStep
		shows string // what the native run must show, or the comparison means little
	}{
		{"isatty, the window size, the foreground group and /dev/tty", []string{"python3", "-c",
			`import os; print([os.isatty(i) for i in range(3)], os.get_terminal_size(), os.tcgetpgrp(0) == os.getpgrp(), os.path.exists("/dev/tty"))`}, nil,
			"[True, True, True] os.terminal_size(columns=101, lines=33) True True\r\n"},
		{"getpass: echo off through /dev/tty", []string{"python3", "-c", `import getpass; print(len(getpass.getpass("pw: ")))`},
			[]terminalStep{{text: "pw: ", n: 1, input: "secret\n"}}, "pw: \r\n6\r\n"},
		{"SIGWINCH and the new size", []string{"python3", "-c", `import os, signal, time
got = []
signal.signal(signal.SIGWINCH, lambda *a: got.append(os.get_terminal_size()))
print("ready", flush=True)
for _ in range(600):
    if got: break
    time.sleep(0.1)
print("size", got)`}, []terminalStep{{text: "ready", n: 1, resize: true}}, "size [os.terminal_size(columns=80, lines=24)]"},
		// Typed ahead, the lines wait in the terminal for whoever reads: the shell takes
		// one a command, head (a program of its own) the one after its command.
		{"an interactive shell, Ctrl-C and typing ahead", []string{"sh", "-i"}, []terminalStep{
			{text: "# ", n: 1, input: "\x03"},
			{text: "# ", n: 2, input: "\x03"},
			{text: "# ", n: 3, input: "echo hi $((6*7))\nhead -n 1\ntyped for head\nexit 3\n"}},
			"hi 42\r\n# typed for head\r\n# "},
		// bash with job control and readline (without .bashrc, whose prompt names the host).
		{"an interactive bash", []string{"bash", "--norc", "-i"}, []terminalStep{
			{text: "# ", n: 1, input: "echo hi $((6*7)) | tr a-z A-Z; (exit 3); echo $?\n"},
			{text: "# ", n: 2, input: "exit 4\n"}},
			"HI 42\r\n3\r\n"},
		{"the Python prompt", []string{"python3", "-q"}, []terminalStep{
			{text: ">>> ", n: 1, input: "6*7\n"},
			{text: ">>> ", n: 2, input: "exit()\n"}}, ">>> 6*7\r\n42\r\n>>> "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			session := func(args ...string) (string, int) {
				s := onTerminal(t, append(os.Environ(), "PITH_KERNEL="+kernel, "PITH_DEADLINE=120s"), args...)
				for _, st := range tc.steps {
					s.waitFor(st.text, st.n)
					if st.input != "" {
						s.ctl.WriteString(st.input)
					}
					if st.resize {
						unix.IoctlSetWinsize(int(s.ctl.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80})
					}
				}
				return s.end()
			}
			// Natively: the tree's own programs in a chroot, with the host's /dev for
			// /dev/tty, mounted in a mount namespace of their own, and the TERM pith
			// gives a root file system's program on a terminal (as docker run -t).
			want, wantCode := session(append([]string{"unshare", "-m", "sh", "-c",
				`mount --rbind /dev "$0/dev" && exec env -i ` + strings.Join(debianEnv, " ") + ` TERM=xterm chroot "$0" "$@"`, root}, tc.args...)...)
			pargs := []string{pith, "run", "--rootfs", root}
			if !strings.Contains(bracketedPaste.Replace(want), tc.shows) {
				t.Fatalf("natively the terminal showed, exit %d:\n%q\nwithout %q", wantCode, want, tc.shows)
			}
			got, code := session(append(pargs, tc.args...)...)
			if got != want || code != wantCode {
				t.Errorf("pith run --rootfs %v on a terminal showed, exit %d:\n%q\nwant, exit %d:\n%q", tc.args, code, got, wantCode, want)
			}
		})
	}
}

// A program that leaves the terminal raw: pith puts back the modes it found when it
// ends, as Docker and Firecracker do, so the user's shell is usable again.
func TestTerminalModesPutBack(t *testing.T) {
	testenv.RequireKVM(t)
	root := testenv.DebianRoot(t)
	pith, kernel := testenv.Build(t)
	s := onTerminal(t, append(os.Environ(), "PITH_KERNEL="+kernel, "PITH_DEADLINE=120s"),
		pith, "run", "--rootfs", root, "python3", "-c", `import sys, termios, tty
before = termios.tcgetattr(0)
tty.setraw(0)
print("raw", termios.tcgetattr(0) != before, end="\r\n")`)
	before, err := unix.IoctlGetTermios(int(s.ctl.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	screen, code := s.end()
	if code != 0 || screen != "raw True\r\n" {
		t.Fatalf("exit %d, the terminal showed %q; want 0 and \"raw True\\r\\n\"", code, screen)
	}
	after, err := unix.IoctlGetTermios(int(s.ctl.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before {
		t.Errorf("the terminal's modes after pith: %+v\nbefore: %+v", after, before)
	}
}

// A program a shell starts reads its standard input from where the shell's reading
// stopped: pith reads standard input only as far as the guest asks (a shell's `read`
// one byte at a time on a pipe), so the rest is there for head, as natively.
func TestStdinSharedWithStartedPrograms(t *testing.T) {
	testenv.RequireKVM(t)
	root := testenv.DebianRoot(t)
	pith, kernel := testenv.Build(t)
	args := []string{"sh", "-c", `read a; head -n 1; echo "after head: $a"`}
	input := "one\ntwo\nthree\n"
	run := func(c *exec.Cmd) string {
		c.Stdin = strings.NewReader(input)
		out, err := c.Output()
		if err != nil {
			t.Fatalf("%v: %v", c.Args, err)
		}
		return string(out)
	}
	native := exec.Command("chroot", append([]string{root}, args...)...)
	native.Env = debianEnv
	want := run(native)
	if want != "two\nafter head: one\n" {
		t.Fatalf("natively: %q", want)
	}
	c := exec.Command(pith, append([]string{"run", "--rootfs", root}, args...)...)
	c.Env = append(os.Environ(), "PITH_KERNEL="+kernel, "PITH_DEADLINE=120s")
	if got := run(c); got != want {
		t.Errorf("pith run --rootfs %v: %q, want %q", args, got, want)
	}
}

// An image's program on a terminal gets TERM=xterm where neither its image nor -e sets
// one, as docker run -t gives it (the host's TERM is not the image's); off a terminal,
// none, as without -t.
func TestTerminalGivesAnImageTERM(t *testing.T) {
	testenv.RequireKVM(t)
	pith, kernel := testenv.Build(t)
	data := "PITH_DATA=" + t.TempDir()
	pithOK(t, []string{data}, "build", "-t", "probe", testenv.Program(t, "probe"))
	env := append(os.Environ(), data, "PITH_KERNEL="+kernel, "PITH_DEADLINE=120s", "TERM=host-term")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "probe", "env", "TERM"}, "xterm\r\n"},
		{[]string{"run", "-e", "TERM=dumb", "probe", "env", "TERM"}, "dumb\r\n"},
	} {
		screen, code := onTerminal(t, env, append([]string{pith}, tc.args...)...).end()
		if code != 0 || screen != tc.want {
			t.Errorf("pith %v on a terminal: exit %d, the terminal showed %q; want %q", tc.args, code, screen, tc.want)
		}
	}
	if r := pithOK(t, []string{data, "TERM=host-term"}, "run", "probe", "env", "TERM"); r.Stdout != "\n" {
		t.Errorf("pith run probe env TERM off a terminal: %q, want an empty line", r.Stdout)
	}
}
