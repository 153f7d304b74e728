package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// Links that would lead out of the guest's view of the file tree if the host
// followed them: writes through them must stay inside the guest. Args: a host
// path that must not appear, and a read-only guest directory.
func escape() {
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
}

// Replace the app's own path with a link to a host file (Args: the file): the
// binary is still what /proc/self/exe opens.
func exeSwap() {
	os.Rename(os.Args[0], os.Args[0]+".bak")
	os.Symlink(os.Args[2], os.Args[0])
	f, err := os.Open("/proc/self/exe")
	head := make([]byte, 4)
	if err == nil {
		f.Read(head)
	}
	fmt.Printf("%q %v\n", head, err)
}
