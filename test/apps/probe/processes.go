package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Other programs, through os/exec: pipes both ways, environment, exit status,
// death by signal, a missing program, inherited stdout and a shared /tmp.
func spawn() {
	self, _ := os.Executable()
	c := exec.Command(self, "cat")
	c.Stdin = strings.NewReader("through a pipe")
	out, err := c.Output()
	fmt.Printf("cat %q %v\n", out, err)
	c = exec.Command(self, "env", "PROBE_CHILD")
	// TMPDIR is the program's, not the host side's: pith must not try to use it.
	c.Env = append(os.Environ(), "PROBE_CHILD=set", "TMPDIR=/nonexistent")
	out, err = c.CombinedOutput()
	fmt.Printf("env %q %v\n", out, err)
	fmt.Println("exit:", exec.Command(self, "exit", "7").Run())
	fmt.Println("exit 130 (not a signal):", exec.Command(self, "exit", "130").Run())
	fmt.Println("signal:", exec.Command(self, "killself").Run())
	_, err = exec.Command("/nonexistent/program").Output()
	fmt.Println("missing:", err)
	text := filepath.Join(os.TempDir(), "probe-text")
	os.WriteFile(text, []byte("not a program\n"), 0o755)
	_, err = exec.Command(text).Output()
	os.Remove(text)
	fmt.Println("not a program:", strings.Contains(fmt.Sprint(err), "exec format error"))
	shared := filepath.Join(os.TempDir(), "probe-shared")
	os.WriteFile(shared, []byte("from the parent"), 0o644)
	out, err = exec.Command(self, "read", shared).Output()
	os.Remove(shared)
	fmt.Printf("shared /tmp %q %v\n", out, err)
	c = exec.Command(self, "stderr")
	c.Stdout, c.Stderr = os.Stdout, os.Stdout
	fmt.Println("inherited:", c.Run())
}
