package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// Tag gives the image src names another name, dst.
func (s *Store) Tag(src, dst string) error {
	img, _, err := s.Resolve(src)
	if err != nil {
		return err
	}
	t, err := ParseName(dst)
	if err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	return s.updateIndex(func(ix *v1.IndexManifest) error {
		for _, m := range ix.Manifests {
			if m.Digest == d {
				setName(ix, t.Name(), m)
				return nil
			}
		}
		return fmt.Errorf("%s was removed meanwhile", src)
	})
}

// Remove removes names, as docker rmi does: by name, the name; by digest, the image
// with all its names, which needs force if it has more than one. The blobs no name
// reaches any more are deleted (unless a build, pull or load is writing meanwhile: then
// pith image prune does it later). It returns a line for each name removed and each
// image deleted.
func (s *Store) Remove(refs []string, force bool) ([]string, error) {
	var out []string
	var failed []string
	for _, ref := range refs {
		lines, err := s.remove(ref, force)
		out = append(out, lines...)
		if err != nil {
			failed = append(failed, err.Error())
		}
	}
	s.collect(false)
	if len(failed) > 0 {
		return out, errors.New(strings.Join(failed, "; "))
	}
	return out, nil
}

func (s *Store) remove(ref string, force bool) ([]string, error) {
	img, full, err := s.Resolve(ref)
	if err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	var out []string
	users := s.users()
	err = s.updateIndex(func(ix *v1.IndexManifest) error {
		var names []string
		for _, m := range ix.Manifests {
			if m.Digest == d {
				names = append(names, Familiar(m.Annotations[refName]))
			}
		}
		if full == "" && len(names) > 1 && !force {
			return fmt.Errorf("image %s has several names (%s): remove them by name, or all at once with -f", ref, strings.Join(names, ", "))
		}
		user := users[d.Hex]
		if user != "" && !force && (full == "" || len(names) == 1) {
			// The last name would go, and the image with it, from under the unikernel.
			if s.Users[d.Hex] == "" {
				return fmt.Errorf("image %s is in use by %s; let it end first or use -f", ref, user)
			}
			return fmt.Errorf("image %s is in use by %s; remove it first or use -f", ref, user)
		}
		kept := ix.Manifests[:0]
		for _, m := range ix.Manifests {
			if m.Digest == d && (full == "" || m.Annotations[refName] == full) {
				out = append(out, "Untagged: "+Familiar(m.Annotations[refName]))
				continue
			}
			kept = append(kept, m)
		}
		ix.Manifests = kept
		for _, m := range kept {
			if m.Digest == d {
				return nil
			}
		}
		if user == "" { // else its blobs and tree stay until no unikernel uses it (collect)
			out = append(out, "Deleted: "+d.String())
		}
		return nil
	})
	return out, err
}

// Prune deletes every blob and unpacked tree no name reaches, and what killed commands
// left in tmp/, waiting for writers to finish. It returns the blobs deleted and the
// bytes freed, trees and tmp/ included.
func (s *Store) Prune() (int, int64, error) {
	return s.collect(true)
}

// collect is Prune; with wait false it gives up at once if a writer holds the store.
func (s *Store) collect(wait bool) (int, int64, error) {
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	unlock, err := s.lock("gc.lock", how)
	if err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return 0, 0, nil
		}
		return 0, 0, err
	}
	defer unlock()
	ix, err := s.readIndex()
	if err != nil {
		return 0, 0, err
	}
	live := map[string]bool{}
	manifests := map[string]bool{}
	users := s.users()
	roots := make([]v1.Hash, 0, len(ix.Manifests)+len(users))
	for _, m := range ix.Manifests {
		roots = append(roots, m.Digest)
	}
	for hex := range users { // named or not, an image a unikernel or a run uses stays whole
		roots = append(roots, v1.Hash{Algorithm: "sha256", Hex: hex})
	}
	for _, d := range roots {
		live[d.Hex] = true
		manifests[d.Hex] = true
		man, err := s.manifest(d)
		if err != nil {
			// Keep what it may name: a damaged manifest is for the user to look at.
			continue
		}
		live[man.Config.Digest.Hex] = true
		for _, l := range man.Layers {
			live[l.Digest.Hex] = true
		}
	}
	deleted, freed := 0, int64(0)
	entries, err := os.ReadDir(s.blobDir())
	if err != nil {
		return 0, 0, err
	}
	for _, e := range entries {
		if live[e.Name()] {
			continue
		}
		p := filepath.Join(s.blobDir(), e.Name())
		if fi, err := e.Info(); err == nil {
			freed += fi.Size()
		}
		deleted++
		if err := os.Remove(p); err != nil {
			return deleted, freed, s.errorf("image store: %v", err)
		}
	}
	trees, _ := os.ReadDir(s.path("rootfs"))
	for _, t := range trees {
		if !manifests[t.Name()] {
			freed += treeSize(s.path("rootfs", t.Name()))
			removeTree(s.path("rootfs", t.Name()))
		}
	}
	// Nothing writes while gc.lock is held exclusively, so what is in tmp/ is left over.
	tmps, _ := os.ReadDir(s.path("tmp"))
	for _, t := range tmps {
		freed += treeSize(s.path("tmp", t.Name()))
		removeTree(s.path("tmp", t.Name()))
	}
	return deleted, freed, nil
}

// treeSize is the bytes of the files beneath root.
func treeSize(root string) int64 {
	var n int64
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// removeTree removes an unpacked tree, first making its directories writable again.
func removeTree(root string) {
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	os.RemoveAll(root)
}
