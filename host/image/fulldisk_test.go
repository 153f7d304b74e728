package image

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// inSmallFilesystem runs the calling test again in a process of its own with dir a
// tmpfs of size bytes, in a user and mount namespace of its own (so no root is needed,
// and the mount is gone with the process); it reports true in that process.
func inSmallFilesystem(t *testing.T, size int) (dir string, inside bool) {
	if dir := os.Getenv("PITH_TEST_SMALL_FS"); dir != "" {
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
			t.Fatalf("mounting a %d-byte tmpfs: %v", size, err)
		}
		t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
		return dir, true
	}
	dir = t.TempDir()
	c := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	c.Env = append(os.Environ(), "PITH_TEST_SMALL_FS="+dir)
	c.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("in a %d-byte filesystem: %v\n%s", size, err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("in a %d-byte filesystem, the test did not pass:\n%s", size, out)
	}
	return dir, false
}

// A store on a full disk: a build or load that does not fit fails with one line saying
// the disk is full, and leaves the store as it was, with nothing in tmp/.
func TestFullDiskLeavesStoreUnchanged(t *testing.T) {
	dir, inside := inSmallFilesystem(t, 1<<20)
	if !inside {
		return
	}
	s, err := Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, testImage(t, "small program"), "small")
	before, beforeBlobs := names(t, s), blobs(t, s)
	program := make([]byte, 2<<20) // random: gzip cannot make it fit
	rand.Read(program)
	big := testImage(t, string(program))
	archive := filepath.Join(t.TempDir(), "big.tar") // outside the small filesystem
	other := openTestStore(t)
	put(t, other, big, "big")
	if err := other.Save([]string{"big"}, archive); err != nil {
		t.Fatal(err)
	}
	tag, _ := ParseName("big")
	for what, f := range map[string]func() error{
		"put":  func() error { return s.put(big, []string{tag.Name()}, nil) },
		"load": func() error { _, err := s.Load(archive); return err },
	} {
		err := f()
		if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "the disk is full") {
			t.Errorf("%s on a full disk: %v; want one line saying the disk is full", what, err)
		}
		if fmt.Sprint(names(t, s)) != fmt.Sprint(before) || fmt.Sprint(blobs(t, s)) != fmt.Sprint(beforeBlobs) {
			t.Errorf("%s on a full disk changed the store: %v %v", what, names(t, s), blobs(t, s))
		}
		if e, _ := os.ReadDir(s.path("tmp")); len(e) != 0 {
			t.Errorf("%s on a full disk left tmp/%s", what, e[0].Name())
		}
	}
	img, _, err := s.Resolve("small")
	if err == nil {
		_, err = s.Rootfs(img)
	}
	if err != nil {
		t.Errorf("the image stored before: %v", err)
	}
	// An image that fits, but not twice: unpacking it for a run fails the same way.
	medium := testImage(t, string(program[:600<<10]))
	put(t, s, medium, "medium")
	if _, err := s.Rootfs(medium); err == nil || !strings.Contains(err.Error(), "the disk is full") {
		t.Errorf("unpacking on a full disk: %v; want one line saying the disk is full", err)
	}
	if trees, _ := os.ReadDir(s.path("rootfs")); len(trees) != 1 {
		t.Errorf("trees after a failed unpack: %v, want the small image's only", trees)
	}
	if e, _ := os.ReadDir(s.path("tmp")); len(e) != 0 {
		t.Errorf("a failed unpack left tmp/%s", e[0].Name())
	}
}
