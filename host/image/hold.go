package image

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// Hold records that this process runs the image whose manifest digest is d, for as long
// as it lives or until the file returned is closed: rmi then refuses to delete the image
// and prune keeps it whole, as for a detached unikernel's (Users). who names the holder
// in rmi's refusal. The record is a file in running/ on which the process holds a shared
// flock: however the process ends, kill -9 included, the kernel drops the lock, and the
// next look (held) removes the file. The caller keeps the file referenced (a collected
// os.File closes itself).
func (s *Store) Hold(d v1.Hash, who string) (*os.File, error) {
	dir := s.path("running")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, s.errorf("image store: %v", err)
	}
	// Locked before it has its name, so that held never finds it unlocked.
	f, err := os.CreateTemp(dir, ".new-")
	if err != nil {
		return nil, s.errorf("image store: %v", err)
	}
	if err = unix.Flock(int(f.Fd()), unix.LOCK_SH); err == nil {
		if _, err = f.WriteString(who); err == nil {
			err = os.Rename(f.Name(), filepath.Join(dir, fmt.Sprintf("%s-%d", d.Hex, os.Getpid())))
		}
	}
	if err != nil {
		os.Remove(f.Name())
		f.Close()
		return nil, s.errorf("image store: recording the image in use: %v", err)
	}
	return f, nil
}

// held names, for the manifest digest of each image a live process holds (Hold), the
// holder; it removes the records of holders that have ended.
func (s *Store) held() map[string]string {
	dir := s.path("running")
	entries, _ := os.ReadDir(dir)
	out := map[string]string{}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		hex, _, named := strings.Cut(e.Name(), "-")
		if !named || strings.HasPrefix(e.Name(), ".new-") {
			// A Hold killed before its rename; a live one is younger than this.
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Minute && unlocked(p) {
				os.Remove(p)
			}
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.Remove(p) // its holder has ended
			f.Close()
			continue
		}
		who, _ := io.ReadAll(io.LimitReader(f, 256))
		f.Close()
		if out[hex] == "" {
			out[hex] = string(who)
		}
	}
	return out
}

// unlocked reports whether no one holds a flock on file p.
func unlocked(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}

// users is Users with the images live processes hold (held).
func (s *Store) users() map[string]string {
	out := map[string]string{}
	for hex, who := range s.held() {
		out[hex] = who
	}
	for hex, who := range s.Users { // a unikernel is the better name: it outlives a run
		out[hex] = who
	}
	return out
}
