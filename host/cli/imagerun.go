package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pithvm/pith/host/image"
	"github.com/pithvm/pith/host/program"
)

// imageArg reports whether pith run's first argument names an image rather than an
// executable: it is no file here, and reads as an image name (a path that starts with
// / or . is always a file).
func imageArg(arg string) bool {
	if strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, ".") {
		return false
	}
	if _, err := os.Lstat(arg); err == nil {
		return false
	}
	_, err := name.ParseReference(arg)
	return err == nil
}

// imageApp turns pith run IMAGE ARGS into the run of the image's program: the image
// unpacked (pulled first if the store lacks it) as the guest's /, with a writable layer
// of the unikernel's own over it; its entrypoint and cmd (ARGS, if given, replace the
// cmd), its environment under the user's -e and --env-file, its working directory
// unless -w. It returns the arguments to run
// in place of IMAGE ARGS.
func imageApp(o *runOptions, args []string) ([]string, error) {
	store, err := openImages()
	if err != nil {
		return nil, err
	}
	ref := args[0]
	var img v1.Image
	if session != nil && session.inst.Image() != "" {
		// A detached unikernel runs the image it was made with, even with its name gone
		// (pith rmi -f) or given to another image since.
		img, err = store.Image(v1.Hash{Algorithm: "sha256", Hex: session.inst.Image()})
	}
	if img == nil {
		img, _, err = store.Resolve(ref)
	}
	var nf *image.NotFoundError
	if errors.As(err, &nf) {
		fmt.Fprintf(os.Stderr, "no image %s here; pulling it\n", ref)
		img, err = pullImage(ref, false)
	}
	if err != nil {
		return nil, err
	}
	if session == nil {
		// A foreground run: its image stays whole while it runs (a detached one is
		// recorded with its unikernel below).
		d, err := img.Digest()
		if err == nil {
			heldImage, err = store.Hold(d, fmt.Sprintf("pith run (pid %d)", os.Getpid()))
		}
		if err != nil {
			return nil, err
		}
	}
	spec, err := store.RunSpec(img, args[1:])
	if err != nil {
		return nil, fmt.Errorf("image %s: %v", ref, err)
	}
	if err := program.CheckAs(spec.Exe, spec.ExePath, spec.Root); err != nil {
		return nil, fmt.Errorf("image %s: %v", ref, err)
	}
	env := spec.Env
	if !hasVar(env, "HOME") {
		env = append(env, "HOME=/root") // as Docker gives a container run as root
	}
	o.image = &imageRun{root: spec.Root, env: env}
	if session != nil {
		d, err := img.Digest()
		if err == nil {
			err = session.inst.SetImage(d.Hex)
		}
		if err != nil {
			return nil, err
		}
		// The unikernel's own layer over the image, kept with its state until pith rm.
		o.image.layer = filepath.Join(session.inst.Dir, "layer")
	}
	if o.workdir == "" {
		o.workdir = spec.Workdir
	}
	o.spawnedExe = spec.ExePath
	o.spawnedArgv0 = spec.Args[0]
	return append([]string{spec.Exe}, spec.Args[1:]...), nil
}

// rootfsApp turns pith run --rootfs DIR PROGRAM ARGS into the run of PROGRAM found in
// DIR, with DIR as the guest's / and a temporary writable layer over it, as an image's
// files are: the environment is an image's default (PATH, HOME) under -e and
// --env-file, and the working directory / unless -w.
func rootfsApp(o *runOptions, args []string) ([]string, error) {
	root, err := filepath.Abs(o.rootfs)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("--rootfs %s: no such directory", o.rootfs)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("--rootfs %s is not a directory: give the directory holding the root file system", o.rootfs)
	}
	env := []string{"PATH=" + program.DefaultPath, "HOME=/root"}
	for _, e := range o.machine.env {
		if k, v, _ := strings.Cut(e, "="); k == "PATH" {
			env[0] = "PATH=" + v
		}
	}
	workdir := o.workdir
	if workdir == "" {
		workdir = "/"
	}
	exe, guestPath, err := program.Find(root, args[0], workdir, env)
	if err != nil {
		return nil, fmt.Errorf("--rootfs %s: %s is not there", o.rootfs, args[0])
	}
	if err := program.CheckAs(exe, guestPath, root); err != nil {
		return nil, fmt.Errorf("--rootfs %s: %v", o.rootfs, err)
	}
	o.image = &imageRun{root: root, env: env}
	o.workdir = workdir
	o.spawnedExe = guestPath
	o.spawnedArgv0 = args[0]
	return append([]string{exe}, args[1:]...), nil
}

// heldImage is the record that this process runs an image (image.Store.Hold), kept
// open, and so locked, until the process ends.
var heldImage *os.File

// imageRun is what runRun takes from an image besides the program and its arguments.
type imageRun struct {
	root  string   // the guest's /
	layer string   // the writable layer over it; "" for a temporary one
	env   []string // the environment the user's -e and --env-file add to
}

// imageUsers names, for each image a unikernel (one pith ps -a lists) runs, the
// unikernel: pith rmi and image prune leave such an image's files alone.
func imageUsers() (map[string]string, error) {
	store, err := openInstances()
	if err != nil {
		return nil, err
	}
	insts, err := store.List()
	if err != nil {
		return nil, err
	}
	users := map[string]string{}
	for _, inst := range insts {
		if hex := inst.Image(); hex != "" && users[hex] == "" {
			users[hex] = fmt.Sprintf("unikernel %s (%s)", inst.Config.Name, inst.ID[:min(12, len(inst.ID))])
		}
	}
	return users, nil
}

func hasVar(env []string, key string) bool {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			return true
		}
	}
	return false
}
