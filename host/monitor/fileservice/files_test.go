package fileservice

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
)

// The file service's requests come from the guest. Whatever a request that only reads
// says (operation, path, buffer, length, handle, flags), it is answered with a count, a
// handle or an errno, never a panic. (The operations that change files are left out: a
// fuzzer's paths would be written on the host.)
func FuzzFileServiceReads(f *testing.F) {
	dir := fileTree(f)
	f.Chdir(dir)
	exe := filepath.Join(dir, "app")
	s, err := New(Options{Exe: exe, Home: "/home/nobody"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	g := identityMapped(f)
	const pathAt, bufAt = 0x10000, 0x20000
	for _, seed := range []struct {
		op    uint64
		path  string
		flags uint64
	}{
		{abi.FileOpen, dir + "/data", unix.O_RDONLY},
		{abi.FileOpen, dir + "/sub", unix.O_RDONLY | unix.O_DIRECTORY},
		{abi.FileStat, dir + "/out/passwd", 0},
		{abi.FileStat, dir + "/out", 1},
		{abi.FileReadlink, dir + "/out", 0},
		{abi.FileReadlink, "/proc/self/exe", 0},
		{abi.FileCanonical, dir + "/sub/../out/../data", 0},
		{abi.FileCanonical, "/tmp/../../etc", 0},
	} {
		f.Add(seed.op, []byte(seed.path), uint64(len(seed.path)), uint64(bufAt), uint64(4096), uint64(0), seed.flags)
	}
	f.Add(uint64(abi.FileRead), []byte{}, uint64(0), uint64(bufAt), uint64(100), uint64(1), uint64(0))
	f.Add(uint64(abi.FileReaddir), []byte{}, uint64(0), uint64(bufAt), uint64(4096), uint64(2), uint64(0))
	f.Add(uint64(abi.FileRead), []byte{}, uint64(0), uint64(2<<20-8), uint64(1<<30), uint64(1), uint64(0))
	reads := map[uint64]bool{abi.FileOpen: true, abi.FileRead: true, abi.FileStat: true, abi.FileClose: true,
		abi.FileReaddir: true, abi.FileReadlink: true, abi.FileCanonical: true, abi.FileStdin: true}
	f.Fuzz(func(t *testing.T, op uint64, path []byte, pathLen, buf, n, handle, flags uint64) {
		if !reads[op] {
			return
		}
		if op == abi.FileOpen {
			flags &^= unix.O_CREAT | unix.O_TRUNC | unix.O_APPEND | unix.O_TMPFILE | unix.O_WRONLY | unix.O_RDWR
		}
		clear(g.Bytes()[pathAt:bufAt])
		copy(g.Bytes()[pathAt:bufAt], path)
		r := &abi.FileRequest{Op: op, Handle: handle, Buf: buf, Len: n, Path: pathAt, PathLen: pathLen, Flags: flags}
		got := s.do(g.Virtual(0x1000), r)
		if got < -4095 {
			t.Fatalf("%+v: answered %d, neither a result nor an errno", r, got)
		}
	})
}

// fileTree makes the tree the file service serves: a file, a directory, a link out of it.
func fileTree(f *testing.F) string {
	dir := f.TempDir()
	for _, err := range []error{
		os.WriteFile(filepath.Join(dir, "data"), []byte("data\n"), 0o644),
		os.WriteFile(filepath.Join(dir, "app"), []byte("\x7fELF"), 0o755),
		os.Mkdir(filepath.Join(dir, "sub"), 0o755),
		os.Symlink("/etc", filepath.Join(dir, "out")),
	} {
		if err != nil {
			f.Fatal(err)
		}
	}
	return dir
}

// /etc/resolv.conf names the user-mode network's nameserver, and none with no network;
// /etc/hosts has the names given after localhost.
func TestEtcFiles(t *testing.T) {
	for _, tc := range []struct {
		dns  []netip.Addr
		want string
	}{
		{[]netip.Addr{netip.MustParseAddr("10.0.2.3")}, "nameserver 10.0.2.3\n"},
		{nil, "# no network (pith run --net none)\n"},
	} {
		root, err := newRoot("box", []Host{{IP: netip.MustParseAddr("10.0.2.15"), Name: "box"}}, tc.dns, "", "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(root) })
		if b, err := os.ReadFile(filepath.Join(root, "etc", "resolv.conf")); err != nil || string(b) != tc.want {
			t.Errorf("nameservers %v: resolv.conf %q, %v; want %q", tc.dns, b, err, tc.want)
		}
		if b, err := os.ReadFile(filepath.Join(root, "etc", "hosts")); err != nil || !strings.HasSuffix(string(b), "\n10.0.2.15\tbox\n") {
			t.Errorf("hosts %q, %v", b, err)
		}
	}
}
