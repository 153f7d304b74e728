package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/pithvm/pith/host/image"
	"github.com/pithvm/pith/host/program"
)

type buildOptions struct {
	tags       []string
	adds       []string
	env        []string
	workdir    string
	expose     []string
	entrypoint string
	cmd        string
	labels     []string
}

func newBuildCommand() *cobra.Command {
	var o buildOptions
	c := &cobra.Command{
		Use:   "build -t NAME[:TAG] [flags] PATH",
		Short: "Build an OCI image from a Go main package or a static executable",
		Long: `Build makes an OCI image of PATH, a Go main package (built here with your go, static:
CGO_ENABLED=0, -trimpath) or a static x86-64 Linux executable, and stores it under NAME.
The image holds a base layer (/etc/passwd, group, hosts, nsswitch.conf; the host's CA
certificates if the program uses TLS; its time zones if it loads them), the program as
/usr/local/bin/NAME, and the files --add names: a rebuild of only the program stores
only the program's layer again. docker and podman run the image too.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error { return runBuild(&o, args[0]) },
	}
	f := c.Flags()
	f.StringArrayVarP(&o.tags, "tag", "t", nil, "the image's name, NAME[:TAG] (repeatable)")
	f.StringArrayVar(&o.adds, "add", nil, "copy a host file or directory into the image: SRC:DST (repeatable)")
	f.StringArrayVarP(&o.env, "env", "e", nil, "set an environment variable in the image (KEY=VALUE)")
	f.StringVar(&o.workdir, "workdir", "", "the program's working directory (default /)")
	f.StringArrayVar(&o.expose, "expose", nil, "a port the program listens on, PORT[/tcp|/udp] (repeatable)")
	f.StringVar(&o.entrypoint, "entrypoint", "", `the program the image runs: a path, or a JSON array (["/x", "-v"]); default the program built`)
	f.StringVar(&o.cmd, "cmd", "", `the entrypoint's default arguments: a JSON array, or one argument`)
	f.StringArrayVar(&o.labels, "label", nil, "a label on the image, KEY=VALUE (repeatable)")
	return c
}

func runBuild(o *buildOptions, src string) error {
	if len(o.tags) == 0 {
		return errors.New("build: name the image with -t NAME[:TAG]")
	}
	var tags []name.Tag
	for _, t := range o.tags {
		tag, err := image.ParseName(t)
		if err != nil {
			return fmt.Errorf("-t %s: %v", t, err)
		}
		tags = append(tags, tag)
	}
	bo := image.BuildOptions{Workdir: o.workdir, Expose: o.expose, Labels: map[string]string{}, Created: buildTime(),
		Log: func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }}
	for _, e := range o.env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return fmt.Errorf("-e %q: use KEY=VALUE", e)
		}
		bo.Env = append(bo.Env, e)
	}
	for _, l := range o.labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return fmt.Errorf("--label %q: use KEY=VALUE", l)
		}
		bo.Labels[k] = v
	}
	if o.workdir != "" && !filepath.IsAbs(o.workdir) {
		return fmt.Errorf("--workdir %s: the working directory must be an absolute path", o.workdir)
	}
	for _, p := range o.expose {
		port, proto, _ := strings.Cut(p, "/")
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || (proto != "" && proto != "tcp" && proto != "udp") {
			return fmt.Errorf("--expose %s: use PORT[/tcp|/udp], PORT from 1 to 65535", p)
		}
	}
	var err error
	if bo.Entrypoint, err = argList("--entrypoint", o.entrypoint); err != nil {
		return err
	}
	if bo.Cmd, err = argList("--cmd", o.cmd); err != nil {
		return err
	}
	for _, a := range o.adds {
		s, d, ok := strings.Cut(a, ":")
		if !ok || s == "" || !strings.HasPrefix(d, "/") {
			return fmt.Errorf("--add %q: use SRC:DST, DST an absolute path in the image", a)
		}
		if _, err := os.Lstat(s); err != nil {
			return fmt.Errorf("--add %s: no such file or directory", s)
		}
		bo.Adds = append(bo.Adds, image.Add{Src: s, Dst: d})
	}

	tmp, err := os.MkdirTemp("", "pith-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if bo.Program, bo.Name, err = buildProgram(src, tmp); err != nil {
		return err
	}
	if err := program.Check(bo.Program, ""); err != nil {
		return err
	}
	if _, err := os.Stat(hostCACerts); err == nil {
		bo.CACerts = hostCACerts
	}
	if _, err := os.Stat("/usr/share/zoneinfo"); err == nil {
		bo.Zoneinfo = "/usr/share/zoneinfo"
	}
	img, err := image.Build(bo)
	if err != nil {
		return err
	}
	store, err := openImages()
	if err != nil {
		return err
	}
	if err := store.Put(img, tags, nil); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	for _, t := range tags {
		fmt.Fprintf(os.Stderr, "built %s %s\n", image.Familiar(t.Name()), d)
	}
	return nil
}

// hostCACerts is where Debian, Ubuntu, Alpine and Arch keep the system's CA bundle.
const hostCACerts = "/etc/ssl/certs/ca-certificates.crt"

// buildTime is $SOURCE_DATE_EPOCH if set (reproducible builds), else now.
func buildTime() time.Time {
	if v, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		return time.Unix(v, 0)
	}
	return time.Now().Truncate(time.Second)
}

// argList reads a flag that is a JSON array of strings, or one string.
func argList(flag, v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	if !strings.HasPrefix(strings.TrimSpace(v), "[") {
		return []string{v}, nil
	}
	var list []string
	if err := json.Unmarshal([]byte(v), &list); err != nil {
		return nil, fmt.Errorf(`%s %s: not a JSON array of strings (as ["/app", "-v"])`, flag, v)
	}
	return list, nil
}

// buildProgram is the executable for PATH and its name: PATH itself, or, for a
// directory of Go source, what go build makes of it in dir.
func buildProgram(src, dir string) (string, string, error) {
	abs, err := filepath.Abs(src)
	if err != nil {
		return "", "", err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", "", fmt.Errorf("%s: no such file or directory", src)
	}
	progName := filepath.Base(abs)
	if !fi.IsDir() {
		return abs, progName, nil
	}
	if gos, _ := filepath.Glob(filepath.Join(abs, "*.go")); len(gos) == 0 {
		return "", "", fmt.Errorf("%s is a directory with no Go files; give a Go main package or a static executable", src)
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", "", fmt.Errorf("%s is Go source, and no go command is on PATH: install Go, or give a binary built with CGO_ENABLED=0 go build", src)
	}
	out := filepath.Join(dir, progName)
	fmt.Fprintf(os.Stderr, "go build %s (CGO_ENABLED=0 GOOS=linux GOARCH=amd64 -trimpath)\n", src)
	cmd := exec.Command(goCmd, "build", "-trimpath", "-o", out, ".")
	cmd.Dir = abs
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("go build %s failed (its errors are above)", src)
	}
	return out, progName, nil
}

// openImages opens the user's image store.
func openImages() (*image.Store, error) {
	dir, err := image.DataDir()
	if err != nil {
		return nil, err
	}
	return image.Open(dir)
}
