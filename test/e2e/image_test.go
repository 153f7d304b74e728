package e2e

import (
	"bufio"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pithvm/pith/test/testenv"
)

// pithOK runs pith and fails the test unless it exits 0.
func pithOK(t *testing.T, env []string, args ...string) testenv.Result {
	t.Helper()
	r := testenv.Pith(t, env, args...)
	if r.Code != 0 {
		t.Fatalf("pith %v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r
}

// pith build makes an image of a static binary; pith run IMAGE runs it on the image's
// files, with a writable layer of its own, with the image's entrypoint, environment and working directory,
// as Docker would.
func TestImageBuildAndRun(t *testing.T) {
	testenv.RequireKVM(t)
	probe := testenv.Program(t, "probe")
	env := []string{"PITH_DATA=" + t.TempDir()}
	goMod, _ := filepath.Abs(filepath.Join(testenv.Root(), "go.mod")) // a binary run sees it
	data := filepath.Join(t.TempDir(), "data.txt")
	os.WriteFile(data, []byte("added by --add"), 0o644)
	pithOK(t, env, "build", "-t", "x", "--workdir", "/srv", "-e", "IMG_VAR=from image", "-e", "OVER=image",
		"--add", data+":/srv/data.txt", "--label", "team=pith", probe)
	if r := pithOK(t, env, "images"); !regexp.MustCompile(`(?m)^x\s+latest\s+[0-9a-f]{12}\s`).MatchString(r.Stdout) {
		t.Fatalf("pith images after build:\n%s", r.Stdout)
	}

	for _, tc := range []struct {
		name   string
		args   []string
		stdout string
		code   int
	}{
		{"arguments replace the cmd", []string{"run", "x", "args", "a b", "c"},
			"0=\"/usr/local/bin/probe\"\n1=\"args\"\n2=\"a b\"\n3=\"c\"\n", 0},
		{"exit status", []string{"run", "x", "exit", "7"}, "", 7},
		{"the image's environment", []string{"run", "x", "env", "IMG_VAR"}, "from image\n", 0},
		{"-e over the image's", []string{"run", "-e", "OVER=user", "x", "env", "OVER"}, "user\n", 0},
		{"not the host's environment", []string{"run", "x", "env", "PITH_DATA"}, "\n", 0},
		{"HOME as Docker sets it", []string{"run", "x", "env", "HOME"}, "/root\n", 0},
		{"a file --add put in", []string{"run", "x", "read", "/srv/data.txt"}, "added by --add <nil>\n", 0},
		{"writes go to the unikernel's own layer", []string{"run", "x", "create", "/tmp/ok", "/srv/ok", "/ok", "/root/ok"},
			"wd /srv <nil>\ncreate /tmp/ok <nil>\ncreate /srv/ok <nil>\ncreate /ok <nil>\ncreate /root/ok <nil>\n", 0},
		{"and no other run sees them", []string{"run", "x", "read", "/srv/ok"}, " open /srv/ok: no such file or directory\n", 0},
		{"-w over the image's", []string{"run", "-w", "/tmp", "x", "create"}, "wd /tmp <nil>\n", 0},
		{"the host's project is not there", []string{"run", "x", "read", goMod}, " open " + goMod + ": no such file or directory\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testenv.Pith(t, env, tc.args...)
			if r.Stdout != tc.stdout || r.Code != tc.code {
				t.Fatalf("pith %v: exit %d, stdout %q; want %d, %q\nstderr: %s", tc.args, r.Code, r.Stdout, tc.code, tc.stdout, r.Stderr)
			}
		})
	}

	// A program the app starts is found in the image too (the probe runs itself again).
	r := pithOK(t, env, "run", "x", "spawn")
	for _, want := range []string{`cat "through a pipe" <nil>`, `env "set\n" <nil>`, "exit: exit status 7"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("spawn in an image: no %q in\n%s", want, r.Stdout)
		}
	}

	// save, rmi, load: the same image back, under its name.
	archive := filepath.Join(t.TempDir(), "x.tar")
	pithOK(t, env, "save", "-o", archive, "x")
	pithOK(t, env, "rmi", "x")
	if r := pithOK(t, env, "images", "-q"); r.Stdout != "" {
		t.Fatalf("images after rmi: %q", r.Stdout)
	}
	if r := pithOK(t, env, "load", "-i", archive); r.Stdout != "Loaded image: x:latest\n" {
		t.Fatalf("load said %q", r.Stdout)
	}
	if r := testenv.Pith(t, env, "run", "x", "exit", "3"); r.Code != 3 {
		t.Fatalf("the loaded image: exit %d, want 3\nstderr: %s", r.Code, r.Stderr)
	}
}

// A foreground pith run IMAGE keeps its image: rmi refuses while it runs (one line
// naming the run), and succeeds once it has ended.
func TestImageInUseByAForegroundRun(t *testing.T) {
	testenv.RequireKVM(t)
	probe := testenv.Program(t, "probe")
	data := t.TempDir()
	env := []string{"PITH_DATA=" + data}
	pithOK(t, env, "build", "-t", "held", probe)
	pith, kernel := testenv.Build(t)
	c := exec.Command(pith, "run", "held", "cat")
	c.Env = append(os.Environ(), "PITH_KERNEL="+kernel, "PITH_DATA="+data)
	stdin, _ := c.StdinPipe()
	stdout, _ := c.StdoutPipe()
	var stderr strings.Builder
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill()
	io.WriteString(stdin, "running\n")
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "running\n" {
		t.Fatalf("the run's cat: %q %v; stderr %s", line, err, stderr.String())
	}
	r := testenv.Pith(t, env, "rmi", "held")
	want := regexp.MustCompile(`^pith: image held is in use by pith run \(pid \d+\); let it end first or use -f\n$`)
	if r.Code == 0 || !want.MatchString(r.Stderr) {
		t.Errorf("rmi of the image a run uses: exit %d, stderr %q", r.Code, r.Stderr)
	}
	stdin.Close()
	if err := c.Wait(); err != nil {
		t.Fatalf("the run: %v; stderr %s", err, stderr.String())
	}
	pithOK(t, env, "rmi", "held")
}

// What pith run cannot run from an image is refused with one line that says why.
func TestImageRefusals(t *testing.T) {
	probe := testenv.Program(t, "probe")
	env := []string{"PITH_DATA=" + t.TempDir()}
	pithOK(t, env, "build", "-t", "dyn", "--add", "/bin/true:/bin/true", "--entrypoint", "/bin/true", probe)
	pithOK(t, env, "build", "-t", "gone", "--entrypoint", "/bin/missing", probe)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "dyn"}, "pith: image dyn: /bin/true needs the dynamic linker /lib64/ld-linux-x86-64.so.2, which "},
		{[]string{"run", "gone"}, "pith: image gone: the image's program /bin/missing is not in the image"},
		{[]string{"run", "localhost:1/nothing:1"}, "nothing answers at localhost:1"},
		{[]string{"build", "-t", "x", "/bin/true"}, "pith: /bin/true is dynamically linked"},
	} {
		r := testenv.Pith(t, env, tc.args...)
		lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
		if r.Code != 125 || !strings.Contains(lines[len(lines)-1], tc.want) {
			t.Errorf("pith %v: exit %d, stderr %q; want 125 and a last line with %q", tc.args, r.Code, r.Stderr, tc.want)
		}
	}
}

// An image another tool made and pushed (skopeo, to Debian's docker-registry), pulled
// by pith (testenv/skopeoimage, on the host: the guest has neither), runs.
func TestImageFromSkopeo(t *testing.T) {
	testenv.RequireKVM(t)
	archive := testenv.Program(t, "skopeo-image.tar")
	env := []string{"PITH_DATA=" + t.TempDir()}
	r := pithOK(t, env, "load", "-i", archive)
	name, ok := strings.CutPrefix(strings.TrimSpace(r.Stdout), "Loaded image: ")
	if !ok || !strings.HasSuffix(name, "/skopeo/probe:v1") {
		t.Fatalf("load said %q", r.Stdout)
	}
	if r := pithOK(t, env, "run", name); r.Stdout != "0=\"/prog\"\n1=\"args\"\n2=\"from-cmd\"\n" {
		t.Fatalf("pith run %s: %q", name, r.Stdout)
	}
	if r := pithOK(t, env, "run", name, "env", "FROM_SCRATCH"); r.Stdout != "yes\n" {
		t.Fatalf("the image's environment: %q", r.Stdout)
	}
}

// Each unikernel writes anywhere in its image's tree, to a layer of its own: another run
// of the image does not see the writes, a detached one keeps them across stop and start
// until pith rm, /tmp included (as a container's), and the image it uses is not removed
// under it.
func TestImageWritableLayer(t *testing.T) {
	l := newLifecycle(t)
	probe := testenv.Program(t, "probe")
	env := []string{"PITH_DATA=" + t.TempDir(), "PITH_RUNTIME=" + l.rt}
	pithOK(t, env, "build", "-t", "x", probe)
	first := "before \"\" missing true\npasswd true\ntmp before \"\"\nwrite <nil>\nmkdir <nil>\nwrite <nil>\n" +
		"read \"layer\" \"new\"\nlisted layered true passwd false newdir true local true\n"
	if r := pithOK(t, env, "run", "x", "layer"); r.Stdout != first {
		t.Fatalf("first run: %q, want %q", r.Stdout, first)
	}
	if r := pithOK(t, env, "run", "x", "layer"); r.Stdout != first {
		t.Fatalf("a second run saw the first's writes: %q", r.Stdout)
	}

	runLay := func(want string) {
		t.Helper()
		if r := pithOK(t, env, "wait", "lay"); r.Stdout != "0\n" {
			t.Fatalf("wait lay: %q", r.Stdout)
		}
		if r := pithOK(t, env, "logs", "lay"); r.Stdout != want {
			t.Fatalf("logs lay: %q, want %q", r.Stdout, want)
		}
	}
	pithOK(t, env, "run", "-d", "--name", "lay", "x", "layer")
	runLay(first)
	pithOK(t, env, "stop", "lay")
	pithOK(t, env, "start", "lay")
	again := "before \"layer\" missing false\npasswd false\ntmp before \"in /tmp\"\nwrite <nil>\nmkdir <nil>\nwrite <nil>\n" +
		"read \"layer\" \"new\"\nlisted layered true passwd false newdir true local true\n"
	runLay(first + again)
	pithOK(t, env, "rm", "lay")
	pithOK(t, env, "run", "-d", "--name", "lay", "x", "layer")
	runLay(first) // a new unikernel: a new layer

	// The image is in use: rmi refuses; -f takes the name only, prune keeps the files,
	// and the unikernel starts again on them.
	r := testenv.Pith(t, env, "rmi", "x")
	if r.Code == 0 || !strings.Contains(r.Stderr, "image x is in use by unikernel lay (") || !strings.Contains(r.Stderr, "remove it first or use -f") {
		t.Fatalf("rmi of an image in use: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if r := pithOK(t, env, "rmi", "-f", "x"); r.Stdout != "Untagged: x:latest\n" {
		t.Fatalf("rmi -f x said %q", r.Stdout)
	}
	pithOK(t, env, "image", "prune")
	pithOK(t, env, "start", "lay")
	runLay(first + again)
	pithOK(t, env, "rm", "lay")
	// With its last user gone, prune deletes the image.
	if r := pithOK(t, env, "image", "prune"); strings.HasPrefix(r.Stdout, "Deleted 0 blobs") {
		t.Fatalf("prune after rm: %q", r.Stdout)
	}
}

// pith run --rootfs DIR: DIR is the guest's /, as an image's files are, with a writable
// layer of the run's own over it (DIR is never written); --read-only leaves none, so
// only /tmp and the mounts take writes. The program is found on the guest's PATH.
func TestRunRootfs(t *testing.T) {
	testenv.RequireKVM(t)
	probe := testenv.Program(t, "probe")
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr", "bin"), 0o755)
	os.MkdirAll(filepath.Join(root, "srv"), 0o755)
	b, err := os.ReadFile(probe)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "usr", "bin", "probe"), b, 0o755)
	os.WriteFile(filepath.Join(root, "srv", "data"), []byte("in the rootfs"), 0o644)
	for _, tc := range []struct {
		name   string
		args   []string
		stdout string
	}{
		{"found on PATH, started at /", []string{"probe", "create", "/srv/new"}, "wd / <nil>\ncreate /srv/new <nil>\n"},
		{"its files", []string{"-w", "/srv", "probe", "read", "data"}, "in the rootfs <nil>\n"},
		{"not the host's environment", []string{"probe", "env", "PITH_DATA"}, "\n"},
		{"--read-only", []string{"--read-only", "probe", "create", "/tmp/ok", "/srv/no"},
			"wd / <nil>\ncreate /tmp/ok <nil>\ncreate /srv/no open /srv/no: read-only file system\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testenv.Pith(t, []string{"PITH_DATA=x"}, append([]string{"run", "--rootfs", root}, tc.args...)...)
			if r.Stdout != tc.stdout || r.Code != 0 {
				t.Fatalf("pith run --rootfs %v: exit %d, stdout %q; want %q\nstderr: %s", tc.args, r.Code, r.Stdout, tc.stdout, r.Stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(root, "srv", "new")); err == nil {
		t.Error("a write in the guest reached the --rootfs directory")
	}
}

// --rootfs refusals come with the cause, before a VM is made.
func TestRootfsRefusals(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	dynamic, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "bin", "true"), dynamic, 0o755)
	os.WriteFile(filepath.Join(root, "bin", "i386"), elf32Header(), 0o755)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--rootfs", filepath.Join(root, "nowhere"), "/bin/true"}, "no such directory"},
		{[]string{"--rootfs", root, "missing"}, "--rootfs " + root + ": missing is not there"},
		{[]string{"--rootfs", root, "true"}, "/bin/true needs the dynamic linker /lib64/ld-linux-x86-64.so.2, which " + root + " does not have"},
		{[]string{"--rootfs", filepath.Join(root, "bin", "true"), "true"}, "is not a directory"},
		{[]string{filepath.Join(root, "bin", "true")}, "is dynamically linked: run it with --rootfs DIR"},
		{[]string{"--rootfs", root, "/bin/i386"}, "/bin/i386 is a ELFCLASS32 EM_386 executable; pith runs x86-64 ones"},
		{[]string{"--mac-address", "02:00:00:00:00:01", testenv.Program(t, "probe")}, "--mac-address and --dns go with --net tap"},
	} {
		r := testenv.Pith(t, nil, append([]string{"run"}, tc.args...)...)
		lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
		if r.Code != 125 || len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
			t.Errorf("pith run %v: exit %d, stderr %q; want 125 and one line containing %q", tc.args, r.Code, r.Stderr, tc.want)
		}
	}
}

// elf32Header is the ELF header of a 32-bit x86 executable with no program headers.
func elf32Header() []byte {
	h := make([]byte, 52)
	copy(h, "\x7fELF\x01\x01\x01")            // 32-bit, little-endian, version 1
	binary.LittleEndian.PutUint16(h[16:], 2)  // ET_EXEC
	binary.LittleEndian.PutUint16(h[18:], 3)  // EM_386
	binary.LittleEndian.PutUint32(h[20:], 1)  // version
	binary.LittleEndian.PutUint16(h[40:], 52) // header size
	binary.LittleEndian.PutUint16(h[42:], 32) // program header size
	binary.LittleEndian.PutUint16(h[46:], 40) // section header size
	return h
}
