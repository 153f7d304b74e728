package image

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pithvm/pith/test/testenv"
)

// Against a real registry (Debian's docker-registry), with a client no one here wrote
// (skopeo): what pith pushes, skopeo reads and copies whole; what skopeo pushes, pith
// pulls and can run. The run itself needs KVM: test/e2e's TestImageFromSkopeo.
func TestDistributionRegistryAndSkopeo(t *testing.T) {
	addr, stop, err := testenv.StartRegistry(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx := context.Background()

	s := openTestStore(t)
	ref := addr + "/pith/app:1"
	d := put(t, s, testImage(t, "pushed by pith"), ref)
	if err := s.Push(ctx, ref, "", RemoteOptions{}); err != nil {
		t.Fatal(err)
	}
	out, err := testenv.Skopeo("inspect", "--tls-verify=false", "docker://"+ref)
	if err != nil {
		t.Fatal(err)
	}
	var inspected struct {
		Digest, Architecture, Os string
		Layers                   []string
		Env                      []string
	}
	if err := json.Unmarshal(out, &inspected); err != nil {
		t.Fatalf("skopeo inspect: %v: %s", err, out)
	}
	if inspected.Digest != d.String() || inspected.Architecture != "amd64" || inspected.Os != "linux" ||
		len(inspected.Layers) != 2 || !strings.Contains(strings.Join(inspected.Env, " "), "A=1") {
		t.Fatalf("skopeo sees %+v; pith pushed %s", inspected, d)
	}
	// skopeo copies it out whole: it checks every blob's digest on the way.
	oci := t.TempDir()
	if _, err := testenv.Skopeo("copy", "--src-tls-verify=false", "docker://"+ref, "oci:"+oci+":copied"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(oci, "index.json")); !strings.Contains(string(b), d.String()) {
		t.Fatalf("skopeo's copy has another manifest: %s", b)
	}

	// A FROM-scratch image made without pith, pushed by skopeo, pulled by pith.
	layout := t.TempDir()
	prog := filepath.Join(t.TempDir(), "prog")
	os.WriteFile(prog, []byte("a static program"), 0o755)
	if err := testenv.ScratchLayout(layout, prog, "v1", []string{"hello"}); err != nil {
		t.Fatal(err)
	}
	theirs := addr + "/skopeo/scratch:v1"
	if _, err := testenv.Skopeo("copy", "--dest-tls-verify=false", "oci:"+layout+":v1", "docker://"+theirs); err != nil {
		t.Fatal(err)
	}
	s2 := openTestStore(t)
	img, err := s2.Pull(ctx, theirs, RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := s2.RunSpec(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(spec.Exe); string(b) != "a static program" || strings.Join(spec.Args, " ") != "/prog hello" ||
		strings.Join(spec.Env, " ") != "FROM_SCRATCH=yes" {
		t.Fatalf("skopeo's image as pith runs it: %+v, program %q", spec, b)
	}
}
