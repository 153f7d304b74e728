// Package program finds and checks the program a unikernel runs: an x86-64 Linux
// executable, static on the host, or static or dynamic beneath a root filesystem.
package program

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Check refuses what pith cannot run, with the reason and the fix. root is the host
// directory that will be the guest's / ("" for none): a dynamically linked program needs
// its dynamic linker there.
func Check(path, root string) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: no such file", path)
		}
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory, not an executable", path)
	}
	interp, err := inspect(f, path)
	if err != nil || interp == "" {
		return err
	}
	if root == "" {
		return fmt.Errorf("%s is dynamically linked: run it with --rootfs DIR, a root file system holding its libraries (--rootfs / for this machine's), or build it static (for Go: CGO_ENABLED=0 go build)", path)
	}
	lib, err := beneath(root, interp)
	if err != nil {
		return fmt.Errorf("%s needs the dynamic linker %s, which %s does not have", path, interp, root)
	}
	lf, err := os.Open(lib)
	if err != nil {
		return err
	}
	defer lf.Close()
	if _, err := inspect(lf, interp); err != nil {
		return fmt.Errorf("%s needs the dynamic linker %s: %v", path, interp, err)
	}
	return nil
}

// Dynamic reports whether the executable at path names a dynamic linker (PT_INTERP).
func Dynamic(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	interp, err := inspect(f, path)
	return err == nil && interp != ""
}

// inspect refuses an ELF file pith cannot run and returns the dynamic linker it names,
// if any.
func inspect(f *os.File, path string) (interp string, err error) {
	ef, err := elf.NewFile(f)
	if err != nil {
		return "", fmt.Errorf("%s is not an ELF executable (pith runs x86-64 Linux executables)", path)
	}
	if ef.Class != elf.ELFCLASS64 || ef.Machine != elf.EM_X86_64 {
		return "", fmt.Errorf("%s is a %v %v executable; pith runs x86-64 ones (for Go: GOARCH=amd64)", path, ef.Class, ef.Machine)
	}
	if ef.Type != elf.ET_EXEC && ef.Type != elf.ET_DYN {
		return "", fmt.Errorf("%s is an ELF %v file, not an executable", path, ef.Type)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, min(p.Filesz, 4096))
			if _, err := p.ReadAt(b, 0); err != nil {
				return "", fmt.Errorf("%s: a malformed PT_INTERP: %v", path, err)
			}
			return strings.TrimRight(string(b), "\x00"), nil
		}
	}
	return "", nil
}

// DefaultPath is the PATH of a program whose environment names none, as Docker's.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// CheckAs is Check of the file at host, naming it by guest, its path in the guest: the
// path its user knows.
func CheckAs(host, guest, root string) error {
	if err := Check(host, root); err != nil {
		return errors.New(strings.ReplaceAll(err.Error(), host, guest))
	}
	return nil
}

// Find finds prog in root, a directory that will be a guest's /, as execve would
// from workdir with the environment env: a name without a slash is looked for in env's
// PATH (DefaultPath if it has none), inside root. It returns the program's host path,
// beneath root, and its path in the guest.
func Find(root, prog, workdir string, env []string) (host, guest string, err error) {
	var candidates []string
	switch {
	case path.IsAbs(prog):
		candidates = []string{prog}
	case strings.Contains(prog, "/"):
		candidates = []string{path.Join(workdir, prog)}
	default:
		search := DefaultPath
		for _, e := range env {
			if v, ok := strings.CutPrefix(e, "PATH="); ok {
				search = v
			}
		}
		for _, d := range strings.Split(search, ":") {
			if path.IsAbs(d) {
				candidates = append(candidates, path.Join(d, prog))
			}
		}
	}
	for _, c := range candidates {
		if host, err := beneath(root, c); err == nil {
			return host, c, nil
		}
	}
	return "", "", fmt.Errorf("%s: no such file in %s", prog, root)
}

// beneath is the host path of image path p in an unpacked tree at root, following
// the image's links inside it; it must be a regular file.
func beneath(root, p string) (string, error) {
	rootDir, err := os.Open(root)
	if err != nil {
		return "", err
	}
	defer rootDir.Close()
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	fd, err := unix.Openat2(int(rootDir.Fd()), rel, &unix.OpenHow{
		Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	host, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", err
	}
	if host != root && !strings.HasPrefix(host, filepath.Clean(root)+"/") {
		return "", fmt.Errorf("%s leads out of the image", p)
	}
	return host, nil
}
