package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// The working directory, a relative read, a write and read back in the temporary
// directory, a directory listing, a stat and /proc/self/exe.
func files() {
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
}

// The file named by the argument, and the error reading it.
func read() {
	data, err := os.ReadFile(os.Args[2])
	fmt.Printf("%s %v\n", data, err)
}

// Whether writing the file named by the argument fails.
func write() {
	err := os.WriteFile(os.Args[2], []byte("x"), 0o644)
	fmt.Println("write error:", err != nil)
}

// The working directory, then the error of creating each file the arguments name.
func create() {
	wd, err := os.Getwd()
	fmt.Println("wd", wd, err)
	for _, p := range os.Args[2:] {
		f, err := os.Create(p)
		if err == nil {
			f.Close()
		}
		fmt.Println("create", p, err)
	}
}

// Changes to the file tree: mkdir, positioned writes and reads, chmod, rename,
// symlink, readlink and removal, in a fresh directory under the temporary one.
func tmpops() {
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
}

// Writes anywhere in an image's tree (pith run IMAGE): what an earlier run left, then a
// changed /etc file, a new directory under /usr, a deleted /etc/passwd, read back and
// listed.
func layer() {
	b, err := os.ReadFile("/etc/layered")
	fmt.Printf("before %q missing %v\n", b, os.IsNotExist(err))
	_, err = os.Stat("/etc/passwd")
	fmt.Println("passwd", err == nil)
	b, _ = os.ReadFile("/tmp/kept")
	fmt.Printf("tmp before %q\n", b)
	os.WriteFile("/tmp/kept", []byte("in /tmp"), 0o644)
	fmt.Println("write", os.WriteFile("/etc/layered", []byte("layer"), 0o644))
	fmt.Println("mkdir", os.MkdirAll("/usr/newdir", 0o755))
	fmt.Println("write", os.WriteFile("/usr/newdir/f", []byte("new"), 0o644))
	if err := os.Remove("/etc/passwd"); err != nil && !os.IsNotExist(err) {
		fmt.Println("remove", err)
	}
	etc, _ := os.ReadFile("/etc/layered")
	f, _ := os.ReadFile("/usr/newdir/f")
	fmt.Printf("read %q %q\n", etc, f)
	names := map[string]bool{}
	for _, dir := range []string{"/etc", "/usr"} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			fmt.Println("ls", dir, err)
		}
		for _, e := range ents {
			names[dir+"/"+e.Name()] = true
		}
	}
	fmt.Println("listed layered", names["/etc/layered"], "passwd", names["/etc/passwd"], "newdir", names["/usr/newdir"],
		"local", names["/usr/local"])
}
