package monitor

import (
	"os"
	"syscall"
)

// deferTeardown hands the VM to a small reaper process so that pith can exit without
// waiting for KVM to destroy it: on kvm-pvm that takes 9-12 ms (measured,
// docs/boot-time.md), longer than the whole boot. The reaper holds the VM and vCPU file
// descriptors until pith's end closes the pipe on its standard input; the VM is destroyed
// when the reaper exits. It reports whether the hand-off happened.
func deferTeardown(fds ...int) bool {
	r, w, err := os.Pipe()
	if err != nil {
		return false
	}
	defer r.Close()
	files := []uintptr{r.Fd(), devNull(), devNull()}
	for _, fd := range fds {
		files = append(files, uintptr(fd))
	}
	_, err = syscall.ForkExec("/bin/sh", []string{"sh", "-c", "read _"}, &syscall.ProcAttr{
		Files: files,
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		w.Close()
		return false
	}
	reaperPipe = w // closed by the process's exit
	return true
}

// reaperPipe keeps the write end of the reaper's pipe open until pith exits.
var reaperPipe *os.File

var null *os.File

func devNull() uintptr {
	if null == nil {
		null, _ = os.Open(os.DevNull)
	}
	if null == nil {
		return 0
	}
	return null.Fd()
}
