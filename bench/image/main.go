// Command image times pith's image steps on a Go hello (bench/hello) against the same
// steps done with crane and skopeo, side by side in one run, -n times each (median and
// spread):
//
//   - build, cold: `pith build` with an empty GOCACHE, against `go build` of the same
//     package (same empty cache) followed by `crane append` of the binary onto an empty
//     base into a tarball, the way one makes a FROM-scratch image with crane;
//   - build again after a one-line change to the source (the cache warm);
//   - push to a local registry (Debian's docker-registry, started on a free loopback
//     port), against `crane push` of crane's tarball and `skopeo copy` of pith's image
//     (saved as an OCI archive);
//   - pull from it into an empty store, against `crane pull --format oci` and
//     `skopeo copy` into an OCI layout.
//
// It needs no KVM. crane is taken from $PATH or ~/go/bin, else built once into a temp
// directory (go install github.com/google/go-containerregistry/cmd/crane@v0.22.1).
//
//	make && go run ./bench/image -n 5
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pithvm/pith/test/testenv"
)

var (
	bin   = flag.String("bin", "bin", "directory holding pith")
	reps  = flag.Int("n", 5, "repetitions of each step")
	coldN = flag.Int("cold", 3, "repetitions of the cold builds (each compiles the runtime)")
)

// row is one step's timings for each tool, in the order of tools.
type row struct {
	step  string
	times map[string][]time.Duration
}

var tools = []string{"pith", "crane", "skopeo"}

func main() {
	flag.Parse()
	dir, err := os.MkdirTemp("", "pith-bench-image-")
	if err != nil {
		fatal("%v", err)
	}
	defer os.RemoveAll(dir)
	pith, _ := filepath.Abs(filepath.Join(*bin, "pith"))
	crane := findCrane(dir)
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		fmt.Println("skopeo: not installed (apt-get install skopeo); its column stays empty")
		skopeo = ""
	}
	regDir := filepath.Join(dir, "registry")
	os.MkdirAll(regDir, 0o755)
	reg, stop, err := testenv.StartRegistry(regDir)
	if err != nil {
		fatal("%v", err)
	}
	stopRegistry = stop
	defer stop()

	// The hello, as a module of its own that a line can be changed in.
	src := filepath.Join(dir, "hello")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module hello\n\ngo 1.22\n"), 0o644)
	setSource := func(v int) {
		os.WriteFile(filepath.Join(src, "main.go"), []byte(fmt.Sprintf(
			"package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\", %d) }\n", v)), 0o644)
	}
	setSource(0)
	goVersion, _ := exec.Command("go", "version").Output()
	fmt.Printf("Go hello (bench/hello's source); %s; registry: docker-registry on %s; %d runs (cold builds: %d)\n\n",
		strings.TrimSpace(string(goVersion)), reg, *reps, *coldN)

	env := func(gocache, data string) []string {
		return append(os.Environ(), "GOCACHE="+gocache, "PITH_DATA="+data, "CGO_ENABLED=0")
	}
	var rows []row
	add := func(step, tool string, d time.Duration) {
		for i := range rows {
			if rows[i].step == step {
				rows[i].times[tool] = append(rows[i].times[tool], d)
				return
			}
		}
		rows = append(rows, row{step, map[string][]time.Duration{tool: {d}}})
	}
	warmCache := filepath.Join(dir, "gocache-warm")
	data := filepath.Join(dir, "pith-data")
	craneTar := filepath.Join(dir, "crane-image.tar")
	version := 0
	for i := 0; i < max(*reps, *coldN); i++ {
		if i < *coldN {
			// Cold: an empty cache each time, alternating the tools.
			c := filepath.Join(dir, fmt.Sprintf("gocache-cold-%d-pith", i))
			add("build, cold GOCACHE", "pith", timed(env(c, data), pith, "build", "-t", "hello:1", src))
			os.RemoveAll(c)
			c = filepath.Join(dir, fmt.Sprintf("gocache-cold-%d-crane", i))
			add("build, cold GOCACHE", "crane", craneBuild(env(c, data), crane, src, dir, craneTar))
			os.RemoveAll(c)
		}
		if i >= *reps {
			continue
		}
		// Rebuild after a one-line change, the cache warm from the previous build.
		if i == 0 {
			mustRun(env(warmCache, data), pith, "build", "-t", "hello:1", src)
		}
		version++
		setSource(version)
		add("build after a one-line change", "pith", timed(env(warmCache, data), pith, "build", "-t", "hello:1", src))
		version++
		setSource(version)
		add("build after a one-line change", "crane", craneBuild(env(warmCache, data), crane, src, dir, craneTar))

		// Push: each to a repository of its own, a new tag each time (the blobs are
		// there after the first: what a registry already has is not sent again).
		ref := fmt.Sprintf("%s/pith/hello:%d", reg, i)
		mustRun(env(warmCache, data), pith, "tag", "hello:1", ref)
		add("push", "pith", timed(env(warmCache, data), pith, "push", ref))
		add("push", "crane", timed(nil, crane, "push", "--insecure", craneTar, fmt.Sprintf("%s/crane/hello:%d", reg, i)))
		if skopeo != "" {
			archive := filepath.Join(dir, "pith-image.tar")
			os.Remove(archive)
			mustRun(env(warmCache, data), pith, "save", "-o", archive, "hello:1")
			add("push", "skopeo", timed(nil, skopeo, "copy", "-q", "--dest-tls-verify=false",
				"oci-archive:"+archive, fmt.Sprintf("docker://%s/skopeo/hello:%d", reg, i)))
		}

		// Pull into an empty store, each time.
		fresh := filepath.Join(dir, fmt.Sprintf("pull-%d", i))
		add("pull into an empty store", "pith", timed(env(warmCache, fresh), pith, "pull", ref))
		add("pull into an empty store", "crane", timed(nil, crane, "pull", "--insecure", "--format", "oci", ref, fresh+"-crane"))
		if skopeo != "" {
			add("pull into an empty store", "skopeo", timed(nil, skopeo, "copy", "-q", "--src-tls-verify=false",
				"docker://"+ref, "oci:"+fresh+"-skopeo:hello"))
		}
		os.RemoveAll(fresh)
		os.RemoveAll(fresh + "-crane")
		os.RemoveAll(fresh + "-skopeo")
	}

	fmt.Printf("%-32s", "median (min-max)")
	for _, t := range tools {
		fmt.Printf(" %26s", t)
	}
	fmt.Println()
	for _, r := range rows {
		fmt.Printf("%-32s", r.step)
		for _, t := range tools {
			d := r.times[t]
			if len(d) == 0 {
				fmt.Printf(" %26s", "-")
				continue
			}
			fmt.Printf(" %26s", fmt.Sprintf("%v (%v-%v)", median(d).Round(time.Millisecond),
				slices.Min(d).Round(time.Millisecond), slices.Max(d).Round(time.Millisecond)))
		}
		fmt.Println()
	}
	fmt.Println("\ncrane's build is go build, a tar of the binary and crane append --oci-empty-base into a tarball;")
	fmt.Println("skopeo's push copies pith's image (pith save -o, an OCI archive); its pull writes an OCI layout.")
}

// craneBuild builds the hello with go build and makes a FROM-scratch image of it with
// crane append, the binary as /usr/local/bin/hello, into out (a tarball).
func craneBuild(env []string, crane, src, dir, out string) time.Duration {
	t := time.Now()
	exe := filepath.Join(dir, "hello-bin")
	c := exec.Command("go", "build", "-trimpath", "-o", exe, ".")
	c.Dir, c.Env = src, env
	if b, err := c.CombinedOutput(); err != nil {
		fatal("go build: %v: %s", err, b)
	}
	layer := filepath.Join(dir, "layer.tar")
	if err := tarOf(exe, "usr/local/bin/hello", layer); err != nil {
		fatal("%v", err)
	}
	os.Remove(out)
	mustRun(env, crane, "append", "--oci-empty-base", "-f", layer, "-t", "hello:1", "-o", out)
	return time.Since(t)
}

// tarOf writes a tar holding the file exe as name.
func tarOf(exe, name, out string) error {
	b, err := os.ReadFile(exe)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
	tw.Write(b)
	tw.Close()
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// findCrane is crane from $PATH or ~/go/bin, else one built into dir.
func findCrane(dir string) string {
	if p, err := exec.LookPath("crane"); err == nil {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		if p := filepath.Join(home, "go", "bin", "crane"); exec.Command(p, "version").Run() == nil {
			return p
		}
	}
	gobin := filepath.Join(dir, "gobin")
	c := exec.Command("go", "install", "github.com/google/go-containerregistry/cmd/crane@v0.22.1")
	c.Env = append(os.Environ(), "GOBIN="+gobin, "CGO_ENABLED=0")
	if b, err := c.CombinedOutput(); err != nil {
		fatal("building crane: %v: %s", err, b)
	}
	return filepath.Join(gobin, "crane")
}

// timed runs name with args (in env, if not nil) and returns how long it took; a failure
// ends the benchmark.
func timed(env []string, name string, args ...string) time.Duration {
	t := time.Now()
	mustRun(env, name, args...)
	return time.Since(t)
}

func mustRun(env []string, name string, args ...string) {
	c := exec.Command(name, args...)
	c.Env = env
	if b, err := c.CombinedOutput(); err != nil {
		fatal("%s %s: %v: %s", filepath.Base(name), strings.Join(args, " "), err, b)
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// stopRegistry stops the registry, once it runs: fatal calls it.
var stopRegistry = func() {}

func fatal(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench/image: "+f+"\n", a...)
	stopRegistry()
	os.Exit(1)
}
