// Command probe is a test app for pith run: each subcommand exercises one behaviour the
// end-to-end tests compare with a native run.
package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Println("probe: no command")
		os.Exit(3)
	}
	switch os.Args[1] {
	case "args":
		for i, a := range os.Args {
			fmt.Printf("%d=%q\n", i, a)
		}
	case "env":
		fmt.Println(os.Getenv(os.Args[2]))
	case "exit":
		code, _ := strconv.Atoi(os.Args[2])
		os.Exit(code)
	case "panic":
		panic("probe panics")
	case "stderr":
		fmt.Fprintln(os.Stdout, "to stdout")
		fmt.Fprintln(os.Stderr, "to stderr")
	case "nil":
		// A nil dereference the app recovers from: the fault must become a Go panic.
		defer func() {
			if r := recover(); r != nil {
				fmt.Println("recovered:", r)
			}
		}()
		var p *[8]int
		p[3] = 1
	case "threads":
		// Goroutines on several threads, synchronising through futexes.
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 1000; j++ {
					mu.Lock()
					total++
					mu.Unlock()
					if j%100 == 0 {
						runtime.Gosched()
					}
				}
			}()
		}
		wg.Wait()
		fmt.Println("total", total)
	case "spin":
		// A CPU-bound goroutine with no calls must not starve the ticker (async preemption).
		runtime.GOMAXPROCS(1)
		go func() {
			for {
			}
		}()
		t := time.NewTicker(5 * time.Millisecond)
		for i := 0; i < 5; i++ {
			<-t.C
		}
		fmt.Println("ticked")
	case "sleep":
		t0 := time.Now()
		time.Sleep(20 * time.Millisecond)
		fmt.Println("slept", time.Since(t0) >= 20*time.Millisecond)
	case "signal":
		// SIGUSR1 to itself through signal.Notify.
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGUSR1)
		syscall.Kill(syscall.Getpid(), syscall.SIGUSR1)
		fmt.Println("got", <-c)
	case "files":
		// The working directory, a relative read, a write and read back in the temporary
		// directory, a directory listing, a stat and /proc/self/exe.
		wd, err := os.Getwd()
		fmt.Println("wd", wd, err)
		data, err := os.ReadFile("testdata/hello.txt")
		fmt.Printf("read %q %v\n", data, err)
		tmp := filepath.Join(os.TempDir(), "probe-file")
		err = os.WriteFile(tmp, []byte("written"), 0o644)
		back, err2 := os.ReadFile(tmp)
		fmt.Printf("tmp %q %v %v\n", back, err, err2)
		os.Remove(tmp)
		entries, err := os.ReadDir("testdata")
		for _, e := range entries {
			fmt.Println("entry", e.Name(), e.IsDir())
		}
		fi, err := os.Stat("testdata/hello.txt")
		fmt.Println("stat", fi.Size(), fi.Mode().IsRegular(), err)
		_, err = os.Stat("testdata/missing")
		fmt.Println("missing", os.IsNotExist(err))
		exe, err := os.Executable()
		fmt.Println("exe", filepath.Base(exe), err)
	case "tmpops":
		// Changes to the file tree: mkdir, positioned writes and reads, chmod, rename,
		// symlink, readlink and removal, in a fresh directory under the temporary one.
		dir, err := os.MkdirTemp("", "probe-tmpops")
		if err != nil {
			fmt.Println("mkdirtemp", err)
			os.Exit(1)
		}
		defer os.RemoveAll(dir)
		sub := filepath.Join(dir, "sub")
		fmt.Println("mkdir", os.Mkdir(sub, 0o755))
		f, err := os.Create(filepath.Join(sub, "a"))
		fmt.Println("create", err)
		_, err = f.WriteAt([]byte("world"), 6)
		_, err2 := f.WriteAt([]byte("hello "), 0)
		buf := make([]byte, 5)
		_, err3 := f.ReadAt(buf, 6)
		fmt.Printf("pwrite/pread %q %v %v %v\n", buf, err, err2, err3)
		f.Close()
		fmt.Println("chmod", os.Chmod(filepath.Join(sub, "a"), 0o600))
		fi, err := os.Stat(filepath.Join(sub, "a"))
		fmt.Println("mode", fi.Mode(), fi.Size(), err)
		fmt.Println("rename", os.Rename(filepath.Join(sub, "a"), filepath.Join(dir, "b")))
		fmt.Println("symlink", os.Symlink("b", filepath.Join(dir, "link")))
		target, err := os.Readlink(filepath.Join(dir, "link"))
		fmt.Println("readlink", target, err)
		data, err := os.ReadFile(filepath.Join(dir, "link"))
		fmt.Printf("through link %q %v\n", data, err)
		fmt.Println("rmdir", os.Remove(sub))
		fmt.Println("remove", os.Remove(filepath.Join(dir, "b")))
		_, err = os.Stat(filepath.Join(dir, "b"))
		fmt.Println("gone", os.IsNotExist(err))
		fmt.Println("rmdir non-empty fails", os.Remove(dir) != nil)
		// Links with absolute targets, followed when opening, creating and changing
		// directory through them.
		real := filepath.Join(dir, "real")
		os.Mkdir(real, 0o755)
		fmt.Println("absolute link", os.Symlink(real, filepath.Join(dir, "abs")))
		fmt.Println("write through", os.WriteFile(filepath.Join(dir, "abs", "f"), []byte("via link"), 0o644))
		data, err = os.ReadFile(filepath.Join(real, "f"))
		fmt.Printf("read back %q %v\n", data, err)
		fmt.Println("mkdir through", os.Mkdir(filepath.Join(dir, "abs", "d"), 0o755))
		fmt.Println("chdir through", os.Chdir(filepath.Join(dir, "abs")))
		data, err = os.ReadFile("f")
		fmt.Printf("relative read %q %v\n", data, err)
		fi, err = os.Lstat(filepath.Join(dir, "abs") + "/")
		fmt.Println("lstat with a trailing slash follows", fi.IsDir(), err)
		os.MkdirAll(filepath.Join(dir, "x", "y"), 0o755)
		os.WriteFile(filepath.Join(dir, "x", "marker"), []byte("beside y"), 0o644)
		os.Symlink(filepath.Join(dir, "x", "y"), filepath.Join(dir, "deep"))
		os.Chdir(filepath.Join(dir, "deep"))
		data, err = os.ReadFile("../marker")
		fmt.Printf(".. from where the link led %q %v\n", data, err)
		os.Chdir("/")
		fmt.Println("link to link", os.Symlink(filepath.Join(dir, "abs"), filepath.Join(dir, "abs2")))
		entries, err := os.ReadDir(filepath.Join(dir, "abs2"))
		fmt.Println("listing through", len(entries), err)
		fmt.Println("loop", os.Symlink(filepath.Join(dir, "loop"), filepath.Join(dir, "loop")))
		_, err = os.Stat(filepath.Join(dir, "loop", "x"))
		fmt.Println("loop error", err != nil)
		// File mappings (shared ones written back at munmap), fallocate, times and flock.
		mf, _ := os.Create(filepath.Join(real, "mapped"))
		fmt.Println("fallocate", syscall.Fallocate(int(mf.Fd()), 0, 0, 8192))
		m, err := syscall.Mmap(int(mf.Fd()), 0, 8192, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
		fmt.Println("mmap shared", err)
		if err == nil {
			copy(m[8000:], "through the mapping")
			fmt.Println("munmap", syscall.Munmap(m))
		}
		mf.Close()
		data, err = os.ReadFile(filepath.Join(real, "mapped"))
		fmt.Printf("written back %q %d %v\n", data[8000:8019], len(data), err)
		mf, _ = os.Open(filepath.Join(real, "mapped"))
		m, err = syscall.Mmap(int(mf.Fd()), 0, 8192, syscall.PROT_READ, syscall.MAP_PRIVATE)
		fmt.Printf("mmap private %q %v\n", m[8000:8019], err)
		fmt.Println("flock", syscall.Flock(int(mf.Fd()), syscall.LOCK_EX), syscall.Flock(int(mf.Fd()), syscall.LOCK_UN))
		mf.Close()
		when := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
		fmt.Println("chtimes", os.Chtimes(filepath.Join(real, "mapped"), when, when))
		fi, err = os.Stat(filepath.Join(real, "mapped"))
		fmt.Println("mtime", fi.ModTime().UTC(), err)
	case "escape":
		// Links that would lead out of the guest's view of the file tree if the host
		// followed them: writes through them must stay inside the guest. Args: a host
		// path that must not appear, and a read-only guest directory.
		tmp := os.TempDir()
		os.Symlink("/", filepath.Join(tmp, "abs"))
		os.Symlink("../../../../../../../..", filepath.Join(tmp, "rel"))
		os.Symlink(os.Args[3], filepath.Join(tmp, "ro"))
		for _, l := range []string{"abs", "rel"} {
			through := filepath.Join(tmp, l, os.Args[2])
			os.Mkdir(through, 0o755)
			os.WriteFile(through+"-file", nil, 0o644)
			os.Symlink("x", through+"-link")
			os.Rename(filepath.Join(tmp, "ro"), through+"-moved")
		}
		err := os.WriteFile(filepath.Join(tmp, "ro", "new"), nil, 0o644)
		fmt.Println("write through link to read-only:", err != nil)
		err = os.Chmod(filepath.Join(tmp, "ro", "data.txt"), 0o777)
		fmt.Println("chmod through link to read-only:", err != nil)
		data, err := os.ReadFile(filepath.Join(tmp, "ro", "data.txt"))
		fmt.Printf("read through link: %q %v\n", data, err)
		// $HOME is private and writable, but neither it nor a link in it leads elsewhere.
		home, _ := os.UserHomeDir()
		fmt.Println("remove $HOME refused:", os.Remove(home) != nil)
		os.Symlink("..", filepath.Join(home, "up"))
		err = os.WriteFile(filepath.Join(home, "up", "etc", "hosts"), []byte("x"), 0o644)
		fmt.Println("write /etc through $HOME refused:", err != nil)
		err = os.WriteFile(filepath.Join(home, "f"), []byte("x"), 0o644)
		fmt.Println("write in $HOME:", err)
	case "spawn":
		// Other programs, through os/exec: pipes both ways, environment, exit status,
		// death by signal, a missing program, inherited stdout and a shared /tmp.
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
	case "longsleep":
		// A timeout of "forever" (sleep infinity passes the largest time_t) sleeps.
		done := make(chan struct{})
		go func() {
			ts := syscall.Timespec{Sec: 1<<63 - 1}
			// A handled signal for this thread ends the sleep with EINTR, natively as in
			// pith (where one reached it in ~1 run of 20): only a sleep that ends by
			// itself counts.
			for syscall.Nanosleep(&ts, nil) == syscall.EINTR {
			}
			close(done)
		}()
		select {
		case <-done:
			fmt.Println("woke at once")
		case <-time.After(300 * time.Millisecond):
			fmt.Println("still sleeping")
		}
	case "stopself":
		// SIGTSTP to itself, not caught: Linux stops the process; pith, which has no job
		// control, carries on.
		syscall.Kill(syscall.Getpid(), syscall.SIGTSTP)
		fmt.Println("carried on")
	case "sigchld":
		// A started program's end raises SIGCHLD in its parent.
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGCHLD)
		self, _ := os.Executable()
		exec.Command(self, "exit", "0").Run()
		select {
		case s := <-c:
			fmt.Println("got", s)
		case <-time.After(5 * time.Second):
			fmt.Println("no SIGCHLD")
		}
	case "exeswap":
		// Replace the app's own path with a link to a host file (Args: the file): the
		// binary is still what /proc/self/exe opens.
		os.Rename(os.Args[0], os.Args[0]+".bak")
		os.Symlink(os.Args[2], os.Args[0])
		f, err := os.Open("/proc/self/exe")
		head := make([]byte, 4)
		if err == nil {
			f.Read(head)
		}
		fmt.Printf("%q %v\n", head, err)
	case "read":
		data, err := os.ReadFile(os.Args[2])
		fmt.Printf("%s %v\n", data, err)
	case "write":
		err := os.WriteFile(os.Args[2], []byte("x"), 0o644)
		fmt.Println("write error:", err != nil)
	case "cat":
		io.Copy(os.Stdout, os.Stdin)
	case "notify":
		// Wait for SIGINT or SIGTERM and shut down cleanly.
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
		fmt.Println("ready")
		fmt.Println("got", <-c)
	case "killself":
		syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
		time.Sleep(time.Second)
	case "ids":
		// The identity calls, through both of Go's system-call functions (the syscall
		// package's and the runtime's): pith rewrites both.
		raw := func(nr uintptr) uintptr { r, _, _ := syscall.RawSyscall(nr, 0, 0, 0); return r }
		fmt.Println(syscall.Getpid(), syscall.Getppid(), syscall.Getuid(), syscall.Geteuid(), syscall.Getgid(), syscall.Getegid())
		fmt.Println(raw(syscall.SYS_GETPID), raw(syscall.SYS_GETPPID), raw(syscall.SYS_GETUID),
			raw(syscall.SYS_GETEUID), raw(syscall.SYS_GETGID), raw(syscall.SYS_GETEGID))
	case "ignorepending":
		// Signals pending on a thread that blocks them, whose action then becomes one that
		// ignores them (SIG_IGN; SIG_DFL of SIGCHLD), are discarded, not delivered.
		signal.Notify(make(chan os.Signal, 1), syscall.SIGUSR1)
		runtime.LockOSThread()
		set := uint64(1<<(syscall.SIGUSR1-1) | 1<<(syscall.SIGCHLD-1))
		mask := func(how uintptr) {
			syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, how, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0)
		}
		mask(0) // SIG_BLOCK
		syscall.Tgkill(syscall.Getpid(), syscall.Gettid(), syscall.SIGUSR1)
		syscall.Tgkill(syscall.Getpid(), syscall.Gettid(), syscall.SIGCHLD)
		signal.Ignore(syscall.SIGUSR1)
		var dfl [4]uint64 // struct sigaction: SIG_DFL
		syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(syscall.SIGCHLD), uintptr(unsafe.Pointer(&dfl[0])), 0, 8, 0, 0)
		mask(1) // SIG_UNBLOCK
		time.Sleep(10 * time.Millisecond)
		fmt.Println("survived")
	case "efault":
		// Memory the app never mapped, handed to system calls: EFAULT, as natively.
		const bad = 0x10000000
		_, _, e1 := syscall.Syscall(syscall.SYS_WRITE, 1, bad, 10)
		_, _, e2 := syscall.Syscall6(syscall.SYS_RT_SIGACTION, uintptr(syscall.SIGUSR2), bad, 0, 8, 0, 0)
		_, _, e3 := syscall.Syscall6(syscall.SYS_RT_SIGACTION, uintptr(syscall.SIGUSR2), 0, bad, 8, 0, 0)
		_, _, e4 := syscall.Syscall(syscall.SYS_OPENAT, ^uintptr(99), bad, 0)
		_, _, e5 := syscall.Syscall(syscall.SYS_UNAME, bad, 0, 0)
		random, _ := syscall.Open("/dev/urandom", syscall.O_RDONLY, 0)
		_, _, e6 := syscall.Syscall(syscall.SYS_READ, uintptr(random), bad, 16)
		const sysTime, sysArchPrctl = 201, 158 // x86-64's (the probe's arm64 build is never run)
		_, _, e7 := syscall.Syscall(sysTime, bad, 0, 0)
		_, _, e8 := syscall.Syscall(syscall.SYS_GETTIMEOFDAY, bad, 0, 0)
		_, _, e9 := syscall.Syscall(syscall.SYS_GETCWD, bad, 4096, 0)
		_, _, e10 := syscall.Syscall(sysArchPrctl, 0x1003, bad, 0) // ARCH_GET_FS
		fmt.Println(e1, e2, e3, e4, e5, e6, e7, e8, e9, e10)
	case "readv":
		// readv fills the buffers in turn and stops at a short read; writev gathers.
		var p [2]int
		syscall.Pipe(p[:])
		a, b := []byte("hello "), []byte("world")
		out := [2]syscall.Iovec{{Base: &a[0], Len: uint64(len(a))}, {Base: &b[0], Len: uint64(len(b))}}
		w, _, we := syscall.Syscall(syscall.SYS_WRITEV, uintptr(p[1]), uintptr(unsafe.Pointer(&out[0])), 2)
		x, y := make([]byte, 4), make([]byte, 20)
		in := [3]syscall.Iovec{{Base: &x[0], Len: 4}, {Base: &y[0], Len: 20}, {Base: &x[0], Len: 4}}
		r, _, re := syscall.Syscall(syscall.SYS_READV, uintptr(p[0]), uintptr(unsafe.Pointer(&in[0])), 3)
		_, _, bad := syscall.Syscall(syscall.SYS_READV, uintptr(p[0]), 0x10000000, 1)
		_, _, many := syscall.Syscall(syscall.SYS_READV, uintptr(p[0]), uintptr(unsafe.Pointer(&in[0])), 1025)
		fmt.Printf("writev %d %v, readv %d %v %q %q, bad iovec: %v, 1025 iovecs: %v\n", w, we, r, re, x, y[:r-4], bad, many)
	case "badtid":
		// A thread whose clear_child_tid is memory the app never mapped exits all the same
		// (Linux ignores the failed write), and a pipe2 that cannot write its descriptors
		// leaves none behind.
		done := make(chan bool)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
			syscall.RawSyscall(syscall.SYS_SET_TID_ADDRESS, 0x10000000, 0, 0)
			done <- true
		}()
		<-done
		time.Sleep(50 * time.Millisecond)
		before, _ := syscall.Open("/dev/null", syscall.O_RDONLY, 0)
		syscall.Close(before)
		_, _, e := syscall.RawSyscall(syscall.SYS_PIPE2, 0x10000000, 0, 0)
		after, _ := syscall.Open("/dev/null", syscall.O_RDONLY, 0)
		fmt.Println("still running; pipe2:", e, "descriptors left behind:", after != before)
	case "tstppending":
		// A SIGTSTP pending while blocked stays pending across SIG_DFL (Linux discards
		// only signals it ignores by default), for a handler installed before unblocking.
		runtime.LockOSThread()
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTSTP)
		set := uint64(1 << (syscall.SIGTSTP - 1))
		syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, 0, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0)
		syscall.Tgkill(syscall.Getpid(), syscall.Gettid(), syscall.SIGTSTP)
		var dfl, handler [4]uint64
		syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(syscall.SIGTSTP), uintptr(unsafe.Pointer(&dfl[0])), uintptr(unsafe.Pointer(&handler[0])), 8, 0, 0)
		syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(syscall.SIGTSTP), uintptr(unsafe.Pointer(&handler[0])), 0, 8, 0, 0)
		syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, 1, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0)
		select {
		case s := <-c:
			fmt.Println("got", s)
		case <-time.After(time.Second):
			fmt.Println("lost")
		}
	case "shmfixed":
		// Anonymous memory mapped over part of a shared file mapping is not the file's:
		// what is written there never reaches the file.
		f, err := os.CreateTemp("", "probe-shm")
		if err != nil {
			fmt.Println(err)
			return
		}
		defer os.Remove(f.Name())
		f.Truncate(8 << 20)
		f.WriteAt([]byte("A"), 5<<20)
		m, err := syscall.Mmap(int(f.Fd()), 0, 8<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
		if err != nil {
			fmt.Println(err)
			return
		}
		hi := uintptr(unsafe.Pointer(&m[4<<20]))
		_, _, e := syscall.Syscall6(syscall.SYS_MMAP, hi, 4<<20, syscall.PROT_READ|syscall.PROT_WRITE,
			syscall.MAP_FIXED|syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS, ^uintptr(0), 0)
		m[5<<20] = 'Y'
		m[0] = 'B'
		e2 := syscall.Munmap(m)
		var b [1]byte
		f.ReadAt(b[:], 5<<20)
		var c [1]byte
		f.ReadAt(c[:], 0)
		fmt.Printf("mmap %v munmap %v; at 5 MiB %q, at 0 %q\n", e, e2, b[0], c[0])
	case "idloop":
		n, _ := strconv.Atoi(os.Args[2])
		for i := 0; i < n; i++ {
			syscall.Getppid()
			syscall.RawSyscall(syscall.SYS_GETPID, 0, 0, 0)
		}
	case "eintr":
		// A thread blocked in a system call is sent signals; its call ends with EINTR (or
		// restarts) and the thread goes on where it was.
		sigs := make(chan os.Signal, 64)
		signal.Notify(sigs, syscall.SIGUSR1)
		var p [2]int
		if err := syscall.Pipe(p[:]); err != nil {
			fmt.Println(err)
			return
		}
		tids := make(chan int)
		got := make(chan string)
		go func() {
			runtime.LockOSThread()
			tids <- syscall.Gettid()
			buf := make([]byte, 16)
			for {
				n, err := syscall.Read(p[0], buf)
				if err == syscall.EINTR {
					continue
				}
				got <- fmt.Sprintf("%q %v", buf[:n], err)
				return
			}
		}()
		tid := <-tids
		for i := 0; i < 20; i++ {
			time.Sleep(2 * time.Millisecond)
			syscall.Tgkill(syscall.Getpid(), tid, syscall.SIGUSR1)
		}
		time.Sleep(2 * time.Millisecond)
		syscall.Write(p[1], []byte("hello"))
		fmt.Println("read", <-got)
	default:
		fmt.Println("probe: unknown command", os.Args[1])
		os.Exit(3)
	}
}
