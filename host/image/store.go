// Package image keeps OCI images in a local store and builds, pulls and pushes them.
package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// The store is a directory (DataDir) holding:
//
//	images/               an OCI image layout: oci-layout, index.json, blobs/sha256/<hex>
//	rootfs/<hex>/         an image's files, unpacked once for pith run (<hex>: its manifest digest)
//	tmp/                  blobs and trees being written, renamed into place when complete
//	gc.lock, index.lock   flock(2) files: see below
//
// index.json lists one descriptor per name, with the name (as go-containerregistry
// writes a full reference: index.docker.io/library/hello:latest) in the annotation
// org.opencontainers.image.ref.name. A command's blobs are written to a directory of
// tmp/, checked against their digests and renamed into blobs/ once all are there, so a
// blob present is whole; index.json is replaced by rename, so a reader sees the old
// list or the new one. Writers (build, pull, load) hold
// gc.lock shared while they add blobs and index.lock exclusively while they change the
// index; prune holds gc.lock exclusively, so it never removes a blob that a writer has
// added but not yet named.

// refName is the annotation that names an image in index.json (OCI image layout).
const refName = "org.opencontainers.image.ref.name"

// Store is a local image store.
type Store struct {
	dir string
	// Users names, for the manifest digest (hex) of each image a unikernel uses, the
	// first such unikernel, as "unikernel NAME (ID)": rmi refuses to delete that image
	// unless forced, and neither rmi nor prune deletes its blobs or unpacked tree, named
	// or not (a detached unikernel's writable layer lies over that tree).
	Users map[string]string
}

// DataDir is where pith keeps its data: $PITH_DATA, else $XDG_DATA_HOME/pith, else
// ~/.local/share/pith.
func DataDir() (string, error) {
	if d := os.Getenv("PITH_DATA"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "pith"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", errors.New("no data directory: set PITH_DATA or HOME")
	}
	return filepath.Join(home, ".local", "share", "pith"), nil
}

// Open opens the store in dir, making it if need be.
func Open(dir string) (*Store, error) {
	s := &Store{dir: dir}
	for _, d := range []string{s.blobDir(), s.path("tmp"), s.path("rootfs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, s.errorf("image store %s: %v", dir, err)
		}
	}
	s.sweepTmp()
	if _, err := os.Stat(s.path("images", "oci-layout")); errors.Is(err, os.ErrNotExist) {
		if err := s.writeAtomic(s.path("images", "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

func (s *Store) blobDir() string { return s.path("images", "blobs", "sha256") }

func (s *Store) blobPath(h v1.Hash) string { return filepath.Join(s.blobDir(), h.Hex) }

// errorf is fmt.Errorf for the store's own failures, except that a failure for want of
// space says so in one line, and what to do, instead of naming the file that did not fit.
func (s *Store) errorf(format string, args ...any) error {
	for _, a := range args {
		if err, ok := a.(error); ok {
			if full := s.full(err); full != err {
				return full
			}
		}
	}
	return fmt.Errorf(format, args...)
}

// full is err, or if err is for want of space (ENOSPC, EDQUOT), an error that says so.
func (s *Store) full(err error) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return fmt.Errorf("image store %s: the disk is full; free space there (pith image prune deletes what no image name reaches); the store is as it was", s.dir)
	}
	return err
}

// lock takes flock lock file name, shared or exclusive, waiting for it; the result
// releases it.
func (s *Store) lock(name string, how int) (func(), error) {
	f, err := os.OpenFile(s.path(name), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, s.errorf("image store lock: %v", err)
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, s.errorf("image store lock %s: %v", s.path(name), err)
	}
	return func() { f.Close() }, nil
}

// writeAtomic replaces file p with data: another reader sees the old file or the new one.
func (s *Store) writeAtomic(p string, data []byte) error {
	f, err := os.CreateTemp(s.path("tmp"), "write-")
	if err != nil {
		return s.errorf("image store: %v", err)
	}
	unix.Flock(int(f.Fd()), unix.LOCK_EX) // in use (sweepTmp)
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		return s.errorf("image store: writing %s: %v", filepath.Base(p), err)
	}
	return nil
}

// readIndex reads index.json; a store with none yet has no images.
func (s *Store) readIndex() (*v1.IndexManifest, error) {
	b, err := os.ReadFile(s.path("images", "index.json"))
	if errors.Is(err, os.ErrNotExist) {
		return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}, nil
	}
	if err != nil {
		return nil, err
	}
	var ix v1.IndexManifest
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, s.errorf("image store %s: index.json is damaged (%v); move it away and pull or load the images again", s.dir, err)
	}
	return &ix, nil
}

// updateIndex changes index.json under index.lock.
func (s *Store) updateIndex(change func(ix *v1.IndexManifest) error) error {
	unlock, err := s.lock("index.lock", unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	ix, err := s.readIndex()
	if err != nil {
		return err
	}
	if err := change(ix); err != nil {
		return err
	}
	sort.Slice(ix.Manifests, func(i, j int) bool {
		return ix.Manifests[i].Annotations[refName] < ix.Manifests[j].Annotations[refName]
	})
	b, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return err
	}
	return s.writeAtomic(s.path("images", "index.json"), b)
}

// hasBlob reports whether blob h is stored.
func (s *Store) hasBlob(h v1.Hash) bool {
	_, err := os.Stat(s.blobPath(h))
	return err == nil
}

// stage holds the blobs one build, pull or load writes, in a directory of tmp/, until
// all are there and checked: commit moves them into blobs/, discard drops them, so a
// failed command leaves the store as it was. One killed leaves the directory, which the
// next command to open the store removes (sweepTmp), as prune does.
type stage struct {
	s    *Store
	dir  string
	held *os.File // the directory, locked while in use (sweepTmp)
}

func (s *Store) newStage() (*stage, error) {
	dir, held, err := s.tmpDir("stage-")
	if err != nil {
		return nil, err
	}
	return &stage{s: s, dir: dir, held: held}, nil
}

// tmpDir makes a directory in tmp/ and holds flock on it until the result is closed,
// so that sweepTmp knows it is in use.
func (s *Store) tmpDir(prefix string) (string, *os.File, error) {
	dir, err := os.MkdirTemp(s.path("tmp"), prefix)
	if err != nil {
		return "", nil, s.errorf("image store: %v", err)
	}
	f, err := os.Open(dir)
	if err == nil {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, s.errorf("image store: %v", err)
	}
	return dir, f, nil
}

// sweepTmp removes what commands killed midway left in tmp/: entries no process holds
// a lock on. Its creator locks an entry at once, so one a minute old and unlocked is
// left over.
func (s *Store) sweepTmp() {
	entries, _ := os.ReadDir(s.path("tmp"))
	for _, e := range entries {
		p := s.path("tmp", e.Name())
		fi, err := e.Info()
		if err != nil || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			removeTree(p)
		}
		f.Close()
	}
}

// path is where blob h is: staged, or in the store.
func (st *stage) path(h v1.Hash) string {
	if p := filepath.Join(st.dir, h.Hex); fileExists(p) {
		return p
	}
	return st.s.blobPath(h)
}

func (st *stage) has(h v1.Hash) bool { return fileExists(st.path(h)) }

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// commit moves the staged blobs into the store.
func (st *stage) commit() error {
	entries, err := os.ReadDir(st.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(st.dir, e.Name()), filepath.Join(st.s.blobDir(), e.Name())); err != nil {
			return st.s.errorf("image store: %v", err)
		}
	}
	return nil
}

func (st *stage) discard() {
	os.RemoveAll(st.dir)
	st.held.Close()
}

// writeBlob stages what r yields as blob want: a blob whose bytes do not hash to want
// is refused. counted, if set, hears of each chunk.
func (st *stage) writeBlob(want v1.Hash, r io.Reader, counted func(n int)) error {
	if want.Algorithm != "sha256" || len(want.Hex) != 64 {
		return fmt.Errorf("blob %s: pith stores sha256 blobs only", want)
	}
	if st.has(want) {
		return nil
	}
	f, err := os.CreateTemp(st.dir, "partial-")
	if err != nil {
		return st.s.errorf("image store: %v", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	w := io.MultiWriter(f, h)
	buf := make([]byte, 256<<10)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return st.s.errorf("image store: writing blob %s: %v", want.Hex[:12], err)
			}
			if counted != nil {
				counted(n)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.Hex {
		return fmt.Errorf("blob %s arrived with digest sha256:%s: the source is damaged or changed under us; try again", want, got)
	}
	if err := f.Sync(); err != nil {
		return st.s.errorf("image store: writing blob %s: %v", want.Hex[:12], err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(st.dir, want.Hex))
}

// Progress hears how far writing an image's layers has come: layer i of n, done of
// size bytes (size 0 if unknown), and reused when the store already had it.
type Progress func(i, n int, digest v1.Hash, done, size int64, reused bool)

// writeImage stages img's blobs.
func (st *stage) writeImage(img v1.Image, progress Progress) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for i, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		size, _ := l.Size()
		if st.has(d) {
			if progress != nil {
				progress(i, len(layers), d, size, size, true)
			}
			continue
		}
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		var done int64
		err = st.writeBlob(d, rc, func(n int) {
			done += int64(n)
			if progress != nil {
				progress(i, len(layers), d, done, size, false)
			}
		})
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %s: %w", d.Hex[:12], err)
		}
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	if err := st.writeBlob(cfgName, bytes.NewReader(cfg), nil); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	m, err := img.RawManifest()
	if err != nil {
		return err
	}
	return st.writeBlob(d, bytes.NewReader(m), nil)
}

// Put stores img under each of names (replacing what they named before).
func (s *Store) Put(img v1.Image, names []name.Tag, progress Progress) error {
	var refs []string
	for _, n := range names {
		refs = append(refs, n.Name())
	}
	return s.put(img, refs, progress)
}

// put stores img under full references refs.
func (s *Store) put(img v1.Image, refs []string, progress Progress) error {
	unlock, err := s.lock("gc.lock", unix.LOCK_SH)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := s.newStage()
	if err != nil {
		return err
	}
	defer st.discard()
	if err := st.writeImage(img, progress); err != nil {
		return err
	}
	if err := st.commit(); err != nil {
		return err
	}
	desc, err := partial.Descriptor(img)
	if err != nil {
		return err
	}
	return s.updateIndex(func(ix *v1.IndexManifest) error {
		for _, r := range refs {
			setName(ix, r, *desc)
		}
		return nil
	})
}

// setName makes ix's entry for name point at desc; an empty name keeps an image with
// none (docker's <none>).
func setName(ix *v1.IndexManifest, ref string, desc v1.Descriptor) {
	desc.Annotations = map[string]string{refName: ref}
	desc.Platform, desc.ArtifactType = nil, ""
	for i, m := range ix.Manifests {
		if m.Annotations[refName] == ref && (ref != "" || m.Digest == desc.Digest) {
			ix.Manifests[i] = desc
			return
		}
	}
	ix.Manifests = append(ix.Manifests, desc)
}

// ParseName reads an image name as Docker does: hello is docker.io/library/hello:latest.
func ParseName(s string) (name.Tag, error) {
	t, err := name.NewTag(s)
	if err != nil {
		return name.Tag{}, fmt.Errorf("%q is not an image name (NAME[:TAG], as registry.example.com/team/app:1.0)", s)
	}
	return t, nil
}

// Familiar is how Docker shows a name: hello:latest for docker.io/library/hello:latest.
func Familiar(ref string) string {
	for _, p := range []string{"index.docker.io/library/", "index.docker.io/"} {
		if r, ok := strings.CutPrefix(ref, p); ok {
			return r
		}
	}
	return ref
}

// containerdName is a full reference as containerd and docker save write it: Docker
// Hub's as docker.io/..., where go-containerregistry says index.docker.io/...; ctr
// import and containerd's CRI look images up by that name.
func containerdName(ref string) string {
	if r, ok := strings.CutPrefix(ref, "index.docker.io/"); ok {
		return "docker.io/" + r
	}
	return ref
}

// Entry is a name in the store.
type Entry struct {
	Name    string    // the full reference, as index.docker.io/library/hello:latest
	Digest  v1.Hash   // the manifest's
	Size    int64     // the manifest's, config's and layers' bytes
	Created time.Time // as its config says
}

// List is the store's names, sorted.
func (s *Store) List() ([]Entry, error) {
	ix, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, m := range ix.Manifests {
		e := Entry{Name: m.Annotations[refName], Digest: m.Digest, Size: m.Size}
		if man, err := s.manifest(m.Digest); err == nil {
			e.Size += man.Config.Size
			for _, l := range man.Layers {
				e.Size += l.Size
			}
			if b, err := s.readBlob(man.Config.Digest); err == nil {
				if cf, err := v1.ParseConfigFile(bytes.NewReader(b)); err == nil {
					e.Created = cf.Created.Time
				}
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// manifest reads the stored manifest with digest d.
func (s *Store) manifest(d v1.Hash) (*v1.Manifest, error) {
	b, err := s.readBlob(d)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %v", d.Hex[:12], err)
	}
	return m, nil
}

// readBlob reads a small blob whole and checks its digest.
func (s *Store) readBlob(d v1.Hash) ([]byte, error) {
	b, err := os.ReadFile(s.blobPath(d))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("blob %s is missing from the image store %s; pull or load the image again", d, s.dir)
		}
		return nil, err
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != d.Hex {
		return nil, s.corrupt(d)
	}
	return b, nil
}

// corrupt is the error for a stored blob whose bytes no longer match its digest.
func (s *Store) corrupt(d v1.Hash) error {
	return fmt.Errorf("blob %s in the image store is corrupt (its contents do not match the digest); remove it (rm %s), then pull, load or build the image again", d, s.blobPath(d))
}

// Resolve finds an image by name (hello, hello:1.0, registry/x/y:tag) or by digest
// (sha256:..., or a prefix of 12 or more hex digits). It returns the image and the
// full name it was found under ("" for a digest).
func (s *Store) Resolve(ref string) (v1.Image, string, error) {
	ix, err := s.readIndex()
	if err != nil {
		return nil, "", err
	}
	hexPart := strings.TrimPrefix(ref, "sha256:")
	if len(hexPart) >= 12 && strings.Trim(hexPart, "0123456789abcdef") == "" {
		for _, m := range ix.Manifests {
			if strings.HasPrefix(m.Digest.Hex, hexPart) {
				img, err := s.Image(m.Digest)
				return img, "", err
			}
		}
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, "", fmt.Errorf("%q is not an image name (NAME[:TAG], as registry.example.com/team/app:1.0)", ref)
	}
	for _, m := range ix.Manifests {
		if m.Annotations[refName] == r.Name() {
			img, err := s.Image(m.Digest)
			return img, r.Name(), err
		}
	}
	return nil, "", &NotFoundError{Ref: ref}
}

// NotFoundError is a name the store does not hold.
type NotFoundError struct{ Ref string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no image %s here (pith images lists them; pith pull or pith build makes one)", e.Ref)
}

// Image is the stored image with manifest digest d. Its blobs are read as asked for,
// and each is checked against its digest as it is read.
func (s *Store) Image(d v1.Hash) (v1.Image, error) {
	raw, err := s.readBlob(d)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %v", d.Hex[:12], err)
	}
	return partial.CompressedToImage(&storedImage{s: s, raw: raw, m: m})
}

// storedImage is an image read from the store's blobs.
type storedImage struct {
	s   *Store
	raw []byte
	m   *v1.Manifest
}

func (i *storedImage) RawManifest() ([]byte, error)        { return i.raw, nil }
func (i *storedImage) MediaType() (types.MediaType, error) { return i.m.MediaType, nil }
func (i *storedImage) RawConfigFile() ([]byte, error)      { return i.s.readBlob(i.m.Config.Digest) }

func (i *storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range i.m.Layers {
		if l.Digest == h {
			return &storedLayer{s: i.s, desc: l}, nil
		}
	}
	if i.m.Config.Digest == h {
		return &storedLayer{s: i.s, desc: i.m.Config}, nil
	}
	return nil, fmt.Errorf("blob %s is not in this image", h)
}

// storedLayer is a layer blob in the store.
type storedLayer struct {
	s    *Store
	desc v1.Descriptor
}

func (l *storedLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *storedLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storedLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

func (l *storedLayer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.s.blobPath(l.desc.Digest))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("layer %s is missing from the image store %s; pull or load the image again", l.desc.Digest, l.s.dir)
		}
		return nil, err
	}
	return &checkedReader{f: f, h: sha256.New(), want: l.desc.Digest, s: l.s}, nil
}

// checkedReader reads a blob and, at its end, fails if the bytes did not hash to the
// blob's digest.
type checkedReader struct {
	f    *os.File
	h    hash.Hash
	want v1.Hash
	s    *Store
}

func (r *checkedReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	r.h.Write(p[:n])
	if err == io.EOF && hex.EncodeToString(r.h.Sum(nil)) != r.want.Hex {
		return n, r.s.corrupt(r.want)
	}
	return n, err
}

func (r *checkedReader) Close() error { return r.f.Close() }

// Verify reads every blob of img and reports the first whose bytes do not match its
// digest, or that is missing.
func Verify(img v1.Image) error {
	if _, err := img.RawConfigFile(); err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
