package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pithvm/pith/host/instance"
)

// pith runs the command line in this process and returns its exit status and output.
func pith(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	dir := t.TempDir()
	out, _ := os.Create(filepath.Join(dir, "stdout"))
	errOut, _ := os.Create(filepath.Join(dir, "stderr"))
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = out, errOut
	code := Main(args)
	os.Stdout, os.Stderr = stdout, stderr
	out.Close()
	errOut.Close()
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errOut.Name())
	return code, string(o), string(e)
}

// goMain writes a Go main package printing msg, and returns its directory.
func goMain(t *testing.T, msg string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "greet")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module greet\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { println(\""+msg+"\") }\n"), 0o644)
	return dir
}

func TestBuildAndManageImages(t *testing.T) {
	t.Setenv("PITH_DATA", t.TempDir())
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	src := goMain(t, "hi")
	code, _, stderr := pith(t, "build", "-t", "greet:1", "--expose", "8080", "--label", "a=b", src)
	if code != 0 {
		t.Fatalf("build: exit %d: %s", code, stderr)
	}
	digest := regexp.MustCompile(`built greet:1 (sha256:[0-9a-f]{64})`).FindStringSubmatch(stderr)
	if digest == nil || !strings.Contains(stderr, "layer ") || !strings.Contains(stderr, "program /usr/local/bin/greet") {
		t.Fatalf("build's progress lines:\n%s", stderr)
	}
	// The same source again: Go's build and the layers are reproducible, so the same image.
	if _, _, again := pith(t, "build", "-t", "greet:2", "--expose", "8080", "--label", "a=b", src); !strings.Contains(again, digest[1]) {
		t.Fatalf("a rebuild of the same source made another image:\n%s\nfirst: %s", again, digest[1])
	}
	if code, _, stderr := pith(t, "tag", "greet:1", "registry.example/team/greet:1"); code != 0 {
		t.Fatalf("tag: %s", stderr)
	}
	_, out, _ := pith(t, "images")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !regexp.MustCompile(`^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$`).MatchString(lines[0]) ||
		!regexp.MustCompile(`^greet\s+1\s+`+digest[1][7:19]+`\s+.* ago\s+[0-9.]+[kM]B$`).MatchString(lines[1]) ||
		!strings.HasPrefix(lines[3], "registry.example/team/greet ") {
		t.Fatalf("pith images:\n%s", out)
	}
	_, out, _ = pith(t, "images", "--format", "json")
	var row map[string]any
	if err := json.Unmarshal([]byte(strings.Split(out, "\n")[0]), &row); err != nil || row["Repository"] != "greet" ||
		row["Tag"] != "1" || row["Digest"] != digest[1] {
		t.Fatalf("images --format json: %v\n%s", err, out)
	}
	if _, out, _ = pith(t, "images", "-q"); out != strings.Repeat(digest[1][7:19]+"\n", 3) {
		t.Fatalf("images -q: %q", out)
	}
	if code, out, _ := pith(t, "rmi", "greet:1", "greet:2"); code != 0 || out != "Untagged: greet:1\nUntagged: greet:2\n" {
		t.Fatalf("rmi: %d %q", code, out)
	}
	if code, _, stderr := pith(t, "rmi", "greet:1"); code != 125 || !strings.Contains(stderr, "no image greet:1 here") {
		t.Fatalf("rmi of a name no more: %d %q", code, stderr)
	}
}

func TestBuildRefusals(t *testing.T) {
	t.Setenv("PITH_DATA", t.TempDir())
	empty := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"build", empty}, "name the image with -t"},
		{[]string{"build", "-t", "Bad Name", empty}, "is not an image name"},
		{[]string{"build", "-t", "x", "/bin/true"}, "is dynamically linked"},
		{[]string{"build", "-t", "x", empty}, "is a directory with no Go files"},
		{[]string{"build", "-t", "x", "--expose", "99999", empty}, "--expose 99999: use PORT"},
		{[]string{"build", "-t", "x", "--add", "nothing", empty}, "--add \"nothing\": use SRC:DST"},
		{[]string{"build", "-t", "x", "--entrypoint", "[1", empty}, "not a JSON array"},
		{[]string{"images", "--format", "yaml"}, "pith images knows table"},
		{[]string{"save", "x"}, "name the archive with -o FILE"},
	} {
		code, _, stderr := pith(t, tc.args...)
		if code != 125 || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("pith %v: exit %d, %q; want 125 and one line with %q", tc.args, code, stderr, tc.want)
		}
	}
}

func TestImageArg(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	os.WriteFile("app", nil, 0o755)
	for arg, want := range map[string]bool{
		"app":                                 false, // a file here
		"./missing":                           false,
		"/bin/missing":                        false,
		"hello":                               true,
		"registry:5000/x/y:1":                 true,
		"x@sha256:" + strings.Repeat("a", 64): true,
		"Not An Image":                        false,
	} {
		if got := imageArg(arg); got != want {
			t.Errorf("imageArg(%q) = %v, want %v", arg, got, want)
		}
	}
}

// rmi refuses an image a unikernel (pith ps -a lists it) uses, in Docker's words; -f
// removes the name only, and prune keeps the image until the unikernel is removed.
func TestRmiImageInUse(t *testing.T) {
	t.Setenv("PITH_DATA", t.TempDir())
	t.Setenv("PITH_RUNTIME", t.TempDir())
	if code, _, stderr := pith(t, "build", "-t", "greet", goMain(t, "hi")); code != 0 {
		t.Fatalf("build: %s", stderr)
	}
	images, err := openImages()
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := images.Resolve("greet")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	store, err := openInstances()
	if err != nil {
		t.Fatal(err)
	}
	inst, lk, err := store.Create(instance.Config{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	lk.Release()
	if err := inst.SetImage(d.Hex); err != nil {
		t.Fatal(err)
	}
	want := "pith: image greet is in use by unikernel web (" + inst.ID[:12] + "); remove it first or use -f\n"
	if code, _, stderr := pith(t, "rmi", "greet"); code == 0 || stderr != want {
		t.Fatalf("rmi greet: exit %d, stderr %q, want %q", code, stderr, want)
	}
	if code, out, stderr := pith(t, "rmi", "-f", "greet"); code != 0 || out != "Untagged: greet:latest\n" {
		t.Fatalf("rmi -f greet: exit %d, %q %q", code, out, stderr)
	}
	if _, out, _ := pith(t, "image", "prune"); !strings.HasPrefix(out, "Deleted 0 blobs") {
		t.Fatalf("prune with the unikernel there: %q", out)
	}
	if _, err := images.Image(d); err != nil {
		t.Fatalf("the image after rmi -f and prune: %v", err)
	}
	if err := store.Remove(inst); err != nil {
		t.Fatal(err)
	}
	if _, out, _ := pith(t, "image", "prune"); strings.HasPrefix(out, "Deleted 0 blobs") {
		t.Fatalf("prune once the unikernel is removed: %q", out)
	}
}
