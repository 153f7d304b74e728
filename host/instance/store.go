// Package instance keeps the state of unikernels that run in the background: one directory
// per unikernel under the user's runtime directory, holding its configuration, its state
// (written atomically), a lock its monitor process holds while it lives, and its logs.
//
// There is no daemon: each unikernel's monitor is a process of its own, and every command
// reads these directories. The lock is what keeps them true: a state that says "running"
// whose lock nobody holds belongs to a monitor that died without recording its end (a
// kill -9), and is read as exited.
package instance

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Store is the runtime directory that holds every unikernel's state directory, and
// names/, where each name is a symbolic link to the ID that holds it.
type Store struct {
	Root string
}

// RuntimeDir is where state directories live: $PITH_RUNTIME, else $XDG_RUNTIME_DIR/pith,
// else /run/pith for root, else /tmp/pith-UID.
func RuntimeDir() string {
	if d := os.Getenv("PITH_RUNTIME"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "pith")
	}
	if os.Getuid() == 0 {
		return "/run/pith"
	}
	return fmt.Sprintf("/tmp/pith-%d", os.Getuid())
}

// Open opens (creating it if needed) the store at root.
func Open(root string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(root, "names"), 0o700); err != nil {
		return nil, fmt.Errorf("the runtime directory %s: %v (set PITH_RUNTIME to a writable directory)", root, err)
	}
	return &Store{Root: root}, nil
}

// ErrNotFound is a reference that names no unikernel.
var ErrNotFound = errors.New("no such unikernel")

// NewID is a random 64-hex-digit ID.
func NewID() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Create makes the state directory of a new unikernel with cfg (its Name given, or a
// random one), state "created", and returns it with its lock held, for the caller to hand
// to the monitor. The directory is built under a temporary name and renamed into place
// with its name claimed, so that no half-made one is ever seen; a temporary one left by a
// killed CLI is removed by the next List.
func (s *Store) Create(cfg Config) (*Instance, *Lock, error) {
	id := NewID()
	tmp := filepath.Join(s.Root, ".tmp-"+id)
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, nil, err
	}
	lk, err := lockFile(filepath.Join(tmp, "lock"))
	if err != nil {
		os.RemoveAll(tmp)
		return nil, nil, err
	}
	fail := func(err error) (*Instance, *Lock, error) {
		lk.Release()
		os.RemoveAll(tmp)
		return nil, nil, err
	}
	if cfg.Created.IsZero() {
		cfg.Created = time.Now()
	}
	auto := cfg.Name == ""
	if !auto && !ValidName(cfg.Name) {
		return fail(fmt.Errorf("--name %q: a name is a letter or digit, then letters, digits, '_', '.' and '-'", cfg.Name))
	}
	err = s.withNames(func() error {
		for tries := 0; auto; tries++ {
			cfg.Name = RandomName(tries >= 10)
			if _, taken := s.nameOwner(cfg.Name); !taken {
				break
			}
		}
		if owner, taken := s.nameOwner(cfg.Name); taken {
			return fmt.Errorf("the name %q is in use by unikernel %s: remove it (pith rm %s) or choose another with --name", cfg.Name, owner[:12], cfg.Name)
		}
		if err := writeJSON(filepath.Join(tmp, "config.json"), cfg); err != nil {
			return err
		}
		if err := writeJSON(filepath.Join(tmp, "state.json"), State{Status: StatusCreated}); err != nil {
			return err
		}
		link := filepath.Join(s.Root, "names", cfg.Name)
		os.Remove(link) // a stale one (nameOwner said so)
		if err := os.Symlink(id, link); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(s.Root, id)); err != nil {
			os.Remove(link)
			return err
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	inst := &Instance{ID: id, Dir: filepath.Join(s.Root, id), Config: cfg, State: State{Status: StatusCreated}}
	return inst, lk, nil
}

// withNames runs f holding the store's lock on names/, so that two CLIs that claim one
// name, or one releases it as the other claims it, are put in an order.
func (s *Store) withNames(f func() error) error {
	fd, err := unix.Open(filepath.Join(s.Root, "names.lock"), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("the runtime directory %s: %v", s.Root, err)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return err
	}
	return f()
}

// nameOwner is the ID that holds name; a link to a directory that is gone (its rm was
// killed half-way) holds nothing. Preconditions: the names lock is held.
func (s *Store) nameOwner(name string) (string, bool) {
	id, err := os.Readlink(filepath.Join(s.Root, "names", name))
	if err != nil {
		return "", false
	}
	if _, err := os.Stat(filepath.Join(s.Root, id, "config.json")); err != nil {
		return "", false
	}
	return id, true
}

// Get finds a unikernel by its full ID, its name, or a prefix of its ID that only it has,
// as Docker does.
func (s *Store) Get(ref string) (*Instance, error) {
	if ref == "" {
		return nil, fmt.Errorf("%w: an empty name", ErrNotFound)
	}
	if id, err := os.Readlink(filepath.Join(s.Root, "names", ref)); err == nil && !strings.Contains(ref, "/") {
		if inst, err := s.load(id); err == nil {
			return inst, nil
		}
	}
	if len(ref) == 64 && isHex(ref) {
		if inst, err := s.load(ref); err == nil {
			return inst, nil
		}
	}
	if !isHex(ref) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
	}
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	var match []string
	for _, id := range ids {
		if strings.HasPrefix(id, ref) {
			match = append(match, id)
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
	case 1:
		return s.load(match[0])
	}
	return nil, fmt.Errorf("%d unikernels have IDs that start with %s: give more of the ID, or the name", len(match), ref)
}

// List is every unikernel, newest first.
func (s *Store) List() ([]*Instance, error) {
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	var out []*Instance
	for _, id := range ids {
		if inst, err := s.load(id); err == nil {
			out = append(out, inst)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Config.Created.After(out[j].Config.Created) })
	return out, nil
}

// ids lists the state directories, and removes temporary ones whose creator died.
func (s *Store) ids() ([]string, error) {
	ents, err := os.ReadDir(s.Root)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		name := e.Name()
		if tmp, ok := strings.CutPrefix(name, ".tmp-"); ok && e.IsDir() && len(tmp) == 64 {
			dir := filepath.Join(s.Root, name)
			lk, err := tryLock(filepath.Join(dir, "lock"))
			switch {
			case err == nil:
				os.RemoveAll(dir)
				lk.Release()
			case errors.Is(err, os.ErrNotExist) && abandoned(dir):
				// Its CLI was killed between making it and its lock file.
				os.RemoveAll(dir)
			}
			continue
		}
		if e.IsDir() && len(name) == 64 && isHex(name) {
			ids = append(ids, name)
		}
	}
	return ids, nil
}

// abandoned reports whether a temporary directory with no lock file is old enough that
// no live CLI is about to make one in it: Create makes it just after the directory.
func abandoned(dir string) bool {
	fi, err := os.Stat(dir)
	return err == nil && time.Since(fi.ModTime()) > 2*time.Second
}

// Remove deletes the unikernel's state directory and frees its name. Preconditions: its
// monitor is gone (the caller holds its lock, or found it free).
func (s *Store) Remove(inst *Instance) error {
	// The directory goes first: a name left pointing at nothing is free (nameOwner).
	gone := filepath.Join(s.Root, ".tmp-"+inst.ID)
	if err := os.Rename(inst.Dir, gone); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// The writable layer may hold directories the guest took permissions away from.
	filepath.WalkDir(gone, func(p string, d os.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	err := os.RemoveAll(gone)
	s.withNames(func() error {
		link := filepath.Join(s.Root, "names", inst.Config.Name)
		if id, _ := os.Readlink(link); id == inst.ID {
			os.Remove(link)
		}
		return nil
	})
	return err
}

// ValidName reports whether name is one Docker would take: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
func ValidName(name string) bool {
	for i, c := range name {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return name != "" && len(name) <= 128
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s != ""
}

// writeJSON writes v to path atomically: a reader sees the old file or the new one. Only
// the holder of a directory's lock writes in it, so one temporary name per file is enough,
// and one left by a killed writer is replaced by the next write.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %v", path, err)
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s is corrupt: %v", path, err)
	}
	return nil
}
