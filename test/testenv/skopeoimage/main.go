// Command skopeoimage makes the image test/e2e's TestImageFromSkopeo runs: the probe as
// a FROM-scratch OCI layout written without pith, pushed by skopeo to Debian's
// docker-registry, pulled from there by pith's image store and saved to OUT, so that a
// machine with no registry or skopeo (the nested guest) can load and run it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/pithvm/pith/host/image"
	"github.com/pithvm/pith/test/testenv"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: skopeoimage OUT")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "skopeoimage:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	tmp, err := os.MkdirTemp("", "pith-skopeoimage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	probe := filepath.Join(tmp, "probe")
	build := exec.Command("go", "build", "-o", probe, "./test/apps/probe")
	build.Dir = testenv.Root()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the probe: %v: %s", err, b)
	}
	layout := filepath.Join(tmp, "layout")
	if err := testenv.ScratchLayout(layout, probe, "v1", []string{"args", "from-cmd"}); err != nil {
		return err
	}
	regDir := filepath.Join(tmp, "registry")
	os.Mkdir(regDir, 0o755)
	addr, stop, err := testenv.StartRegistry(regDir)
	if err != nil {
		return err
	}
	defer stop()
	ref := addr + "/skopeo/probe:v1"
	if _, err := testenv.Skopeo("copy", "--dest-tls-verify=false", "oci:"+layout+":v1", "docker://"+ref); err != nil {
		return err
	}
	store, err := image.Open(filepath.Join(tmp, "store"))
	if err != nil {
		return err
	}
	if _, err := store.Pull(context.Background(), ref, image.RemoteOptions{}); err != nil {
		return err
	}
	return store.Save([]string{ref}, out)
}
