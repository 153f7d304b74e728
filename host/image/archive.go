package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// An archive pith save writes is what docker save (25 and later) writes: an OCI image
// layout (oci-layout, index.json naming each image, blobs/sha256/<hex>) and, over the
// same blobs, docker's manifest.json, so that docker load, podman load and skopeo
// (oci-archive: or docker-archive:) read it. pith load reads the OCI layout, keeping
// every digest; an archive with only manifest.json (older docker save) is read through
// it, as docker load does, and gets docker's manifest digests. As in docker save's
// archives, index.json's org.opencontainers.image.ref.name is the tag and
// io.containerd.image.name the full name.

// dockerEntry is an image in docker's manifest.json.
type dockerEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// Save writes the images refs name to file (see above). The file is written beside its
// final name and renamed, so a failed save leaves no half archive.
func (s *Store) Save(refs []string, file string) error {
	ix := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	var docker []dockerEntry
	blobs := map[v1.Hash]bool{}
	var order []v1.Hash
	add := func(h v1.Hash) {
		if !blobs[h] {
			blobs[h] = true
			order = append(order, h)
		}
	}
	for _, ref := range refs {
		img, full, err := s.Resolve(ref)
		if err != nil {
			return err
		}
		desc, err := partial.Descriptor(img)
		if err != nil {
			return err
		}
		m, err := img.Manifest()
		if err != nil {
			return err
		}
		e := dockerEntry{Config: "blobs/sha256/" + m.Config.Digest.Hex}
		add(m.Config.Digest)
		for _, l := range m.Layers {
			add(l.Digest)
			e.Layers = append(e.Layers, "blobs/sha256/"+l.Digest.Hex)
		}
		add(desc.Digest)
		desc.ArtifactType = ""
		if full != "" { // as docker save names them: the tag, and the full name for containerd
			t, _ := name.NewTag(full)
			desc.Annotations = map[string]string{refName: t.TagStr(), "io.containerd.image.name": containerdName(full)}
			e.RepoTags = []string{Familiar(full)}
		}
		ix.Manifests = append(ix.Manifests, *desc)
		docker = append(docker, e)
	}
	f, err := os.CreateTemp(filepath.Dir(file), ".pith-save-")
	if err != nil {
		return fmt.Errorf("save: %v", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	tw := tar.NewWriter(f)
	small := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	ixJSON, _ := json.Marshal(ix)
	dockerJSON, _ := json.Marshal(docker)
	err = small("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	if err == nil {
		err = small("index.json", ixJSON)
	}
	if err == nil {
		err = small("manifest.json", dockerJSON)
	}
	if err == nil {
		err = tw.WriteHeader(&tar.Header{Name: "blobs/sha256/", Mode: 0o755, Typeflag: tar.TypeDir})
	}
	for _, h := range order {
		if err != nil {
			break
		}
		err = s.copyBlob(tw, h)
	}
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		return fmt.Errorf("save: %v", err)
	}
	return os.Rename(f.Name(), file)
}

// copyBlob writes stored blob h into tw, checking its digest on the way.
func (s *Store) copyBlob(tw *tar.Writer, h v1.Hash) error {
	fi, err := os.Stat(s.blobPath(h))
	if err != nil {
		return fmt.Errorf("blob %s is missing from the image store; pull or load the image again", h)
	}
	f, err := os.Open(s.blobPath(h))
	if err != nil {
		return err
	}
	r := &checkedReader{f: f, h: sha256.New(), want: h, s: s}
	defer r.Close()
	if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + h.Hex, Mode: 0o644, Size: fi.Size(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, r)
	return err
}

// Load stores the images of an archive (pith save's, or docker save's) under the names
// it gives them, and returns those names. Every blob is checked against its digest and
// stored before any name changes, so a load that fails changes nothing a name reaches.
func (s *Store) Load(file string) ([]string, error) {
	unlock, err := s.lock("gc.lock", unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer unlock()
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("load: %v", err)
	}
	defer f.Close()
	st, err := s.newStage()
	if err != nil {
		return nil, err
	}
	defer st.discard()
	var ixJSON []byte
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("load %s: not an image archive (%v); pith load reads what pith save and docker save write", file, err)
		}
		p := path.Clean(h.Name)
		switch {
		case p == "index.json":
			if ixJSON, err = io.ReadAll(io.LimitReader(tr, 16<<20)); err != nil {
				return nil, err
			}
		case strings.HasPrefix(p, "blobs/sha256/") && h.Typeflag == tar.TypeReg:
			d := v1.Hash{Algorithm: "sha256", Hex: path.Base(p)}
			if err := st.writeBlob(d, tr, nil); err != nil {
				return nil, fmt.Errorf("load %s: %v", file, err)
			}
		}
	}
	if ixJSON == nil {
		return s.loadDocker(file, st)
	}
	ix, err := v1.ParseIndexManifest(bytes.NewReader(ixJSON))
	if err != nil {
		return nil, fmt.Errorf("load %s: index.json: %v", file, err)
	}
	var list []namedDesc
	for _, desc := range ix.Manifests {
		if !desc.MediaType.IsImage() {
			return nil, fmt.Errorf("load %s: %s is a %s; pith loads single-platform images", file, desc.Digest, desc.MediaType)
		}
		if err := st.checkImage(desc.Digest); err != nil {
			return nil, fmt.Errorf("load %s: %v", file, err)
		}
		ref := desc.Annotations["io.containerd.image.name"] // docker save's full name
		if ref == "" {
			ref = desc.Annotations[refName]
		}
		if ref != "" {
			t, err := name.NewTag(ref)
			if err != nil {
				return nil, fmt.Errorf("load %s: %q is not an image name", file, ref)
			}
			ref = t.Name()
		}
		list = append(list, namedDesc{ref, desc})
	}
	if err := st.commit(); err != nil {
		return nil, err
	}
	return s.name(list)
}

// namedDesc is a name to give an image.
type namedDesc struct {
	ref  string
	desc v1.Descriptor
}

// name gives each image its name ("" keeps it unnamed) and says what it did.
func (s *Store) name(list []namedDesc) ([]string, error) {
	var out []string
	err := s.updateIndex(func(ix *v1.IndexManifest) error {
		for _, n := range list {
			setName(ix, n.ref, n.desc)
			if n.ref == "" {
				out = append(out, n.desc.Digest.String()+" (no name: give it one with pith tag)")
				continue
			}
			out = append(out, Familiar(n.ref))
		}
		return nil
	})
	return out, err
}

// checkImage reports a blob the image with manifest d names that is neither staged nor
// stored.
func (st *stage) checkImage(d v1.Hash) error {
	b, err := os.ReadFile(st.path(d))
	if err != nil {
		return fmt.Errorf("manifest %s is not in the archive", d)
	}
	m, err := v1.ParseManifest(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("manifest %s: %v", d, err)
	}
	for _, l := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if !st.has(l.Digest) {
			return fmt.Errorf("blob %s of image %s is not in the archive", l.Digest, d)
		}
	}
	return nil
}

// loadDocker loads an archive with only docker's manifest.json.
func (s *Store) loadDocker(file string, st *stage) ([]string, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(file) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("load %s: not an image archive (%v); pith load reads what pith save and docker save write", file, err)
	}
	var list []namedDesc
	for _, d := range m {
		var tag *name.Tag
		if len(d.RepoTags) > 0 {
			t, err := name.NewTag(d.RepoTags[0])
			if err != nil {
				return nil, fmt.Errorf("load %s: %q is not an image name", file, d.RepoTags[0])
			}
			tag = &t
		} else if len(m) > 1 {
			return nil, fmt.Errorf("load %s: an image in it has no name, and there are several", file)
		}
		img, err := tarball.Image(opener, tag)
		if err != nil {
			return nil, fmt.Errorf("load %s: %v", file, err)
		}
		if err := st.writeImage(img, nil); err != nil {
			return nil, fmt.Errorf("load %s: %w", file, err)
		}
		desc, err := partial.Descriptor(img)
		if err != nil {
			return nil, err
		}
		for _, t := range d.RepoTags {
			nt, err := name.NewTag(t)
			if err != nil {
				return nil, fmt.Errorf("load %s: %q is not an image name", file, t)
			}
			list = append(list, namedDesc{nt.Name(), *desc})
		}
		if len(d.RepoTags) == 0 {
			list = append(list, namedDesc{"", *desc})
		}
	}
	if len(list) == 0 {
		return nil, errors.New("load " + file + ": the archive holds no image")
	}
	if err := st.commit(); err != nil {
		return nil, err
	}
	return s.name(list)
}
