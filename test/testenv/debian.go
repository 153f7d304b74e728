package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	debianOnce sync.Once
	debianRoot string
	debianErr  error
	debianTemp string // removed by Cleanup
)

// DebianRoot returns a Debian 12 root file system (tools/debian-rootfs.sh: debootstrap
// --variant=minbase with python3 and its tests), with the test program cdynamic at
// /usr/local/bin, as a private tree the test binary removes at exit: its files are hard
// links to the cached tree where the file system allows, so it is cheap. With
// PITH_TEST_DEBIAN set it starts from that tree instead (the nested guest, which cannot
// run debootstrap). The tree is for reading: a test that writes in it writes in the cache.
func DebianRoot(t testing.TB) string {
	t.Helper()
	debianOnce.Do(func() {
		src := os.Getenv("PITH_TEST_DEBIAN")
		if src == "" {
			out, err := exec.Command(filepath.Join(Root(), "tools", "debian-rootfs.sh")).Output()
			if err != nil {
				debianErr = err
				if ee, ok := err.(*exec.ExitError); ok {
					debianErr = fmt.Errorf("tools/debian-rootfs.sh: %v: %s", err, ee.Stderr)
				}
				return
			}
			src = strings.TrimSpace(string(out))
		}
		prog := Program(t, "cdynamic")
		dst, err := os.MkdirTemp("", "pith-debian-")
		if err != nil {
			debianErr = err
			return
		}
		dst = filepath.Join(dst, "root")
		debianTemp = filepath.Dir(dst)
		if err := exec.Command("cp", "-al", src, dst).Run(); err != nil {
			os.RemoveAll(dst)
			if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
				debianErr = fmt.Errorf("copying %s: %v: %s", src, err, out)
				return
			}
		}
		if out, err := exec.Command("cp", prog, filepath.Join(dst, "usr", "local", "bin", "cdynamic")).CombinedOutput(); err != nil {
			debianErr = fmt.Errorf("%v: %s", err, out)
			return
		}
		debianRoot = dst
	})
	if debianErr != nil {
		t.Fatalf("a Debian root file system: %v", debianErr)
	}
	return debianRoot
}
