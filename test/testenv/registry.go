package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// StartRegistry starts Debian's docker-registry (the CNCF distribution server) on a
// free loopback port, storing in dir, and returns its address and a func that stops it.
func StartRegistry(dir string) (addr string, stop func(), err error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return "", nil, fmt.Errorf("docker-registry is needed (tools/test.sh installs the Debian package docker-registry): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr = ln.Addr().String()
	ln.Close()
	config := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(config), 0o644); err != nil {
		return "", nil, err
	}
	var log bytes.Buffer
	c := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	c.Stdout, c.Stderr = &log, &log
	if err := c.Start(); err != nil {
		return "", nil, err
	}
	stop = func() { c.Process.Kill(); c.Wait() }
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if r, err := http.Get("http://" + addr + "/v2/"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return addr, stop, nil
			}
		}
	}
	stop()
	return "", nil, fmt.Errorf("docker-registry did not come up on %s: %s", addr, log.String())
}

// ScratchLayout writes, at dir, an OCI image layout holding one FROM-scratch image
// tagged tag: the file prog as /prog, its entrypoint /prog and cmd cmd. It is written
// here by hand, with nothing of pith's or go-containerregistry's, as another tool's
// image would be.
func ScratchLayout(dir, prog, tag string, cmd []string) error {
	b, err := os.ReadFile(prog)
	if err != nil {
		return err
	}
	var layer bytes.Buffer
	zw := gzip.NewWriter(&layer)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "prog", Mode: 0o755, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Unix(1, 0)})
	tw.Write(b)
	tw.Close()
	zw.Close()
	var tarBytes bytes.Buffer
	zr, _ := gzip.NewReader(bytes.NewReader(layer.Bytes()))
	tarBytes.ReadFrom(zr)
	diffID := sha256.Sum256(tarBytes.Bytes())

	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return err
	}
	put := func(data []byte) (string, int) {
		sum := sha256.Sum256(data)
		h := hex.EncodeToString(sum[:])
		os.WriteFile(filepath.Join(blobs, h), data, 0o644)
		return "sha256:" + h, len(data)
	}
	layerDigest, layerSize := put(layer.Bytes())
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Entrypoint": []string{"/prog"}, "Cmd": cmd, "Env": []string{"FROM_SCRATCH=yes"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(diffID[:])}},
	})
	configDigest, configSize := put(config)
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest, "size": configSize},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layerDigest, "size": layerSize}},
	})
	manifestDigest, manifestSize := put(manifest)
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests": []any{map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifestDigest,
			"size": manifestSize, "annotations": map[string]string{"org.opencontainers.image.ref.name": tag}}},
	})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

// Skopeo runs skopeo with args and returns its output.
func Skopeo(args ...string) ([]byte, error) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		return nil, fmt.Errorf("skopeo is needed (tools/test.sh installs the Debian package skopeo): %v", err)
	}
	out, err := exec.Command("skopeo", args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("skopeo %v: %v: %s", args, err, out)
	}
	return out, nil
}
