package image

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pithvm/pith/host/program"
)

// RunSpec is what pith run takes from an image.
type RunSpec struct {
	Root    string   // the image's files, unpacked on the host: the guest's /
	Exe     string   // the program: its host path, beneath Root
	ExePath string   // the program's path in the image
	Args    []string // its argv: the entrypoint, then the cmd or the user's arguments
	Env     []string // the image's environment
	Workdir string   // the image's working directory
}

// RunSpec unpacks img (once) and works out its program as Docker does: the entrypoint,
// then args if given, else the image's cmd. A program named without a slash is looked
// for in the image's PATH, inside the image.
func (s *Store) RunSpec(img v1.Image, args []string) (*RunSpec, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	if cf.OS != "" && cf.OS != "linux" || cf.Architecture != "" && cf.Architecture != "amd64" {
		return nil, fmt.Errorf("the image is for %s/%s; pith runs linux/amd64 images", cf.OS, cf.Architecture)
	}
	argv := append([]string{}, cf.Config.Entrypoint...)
	if len(args) > 0 {
		argv = append(argv, args...)
	} else {
		argv = append(argv, cf.Config.Cmd...)
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("the image has no entrypoint or cmd: give the program to run after the image name")
	}
	root, err := s.Rootfs(img)
	if err != nil {
		return nil, err
	}
	workdir := cf.Config.WorkingDir
	if workdir == "" {
		workdir = "/"
	}
	spec := &RunSpec{Root: root, Args: argv, Env: cf.Config.Env, Workdir: workdir}
	if spec.Exe, spec.ExePath, err = program.Find(root, argv[0], workdir, cf.Config.Env); err != nil {
		return nil, fmt.Errorf("the image's program %s is not in the image", argv[0])
	}
	return spec, nil
}
