package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pithvm/pith/host/image"
)

func newImagesCommand() *cobra.Command {
	var format string
	var quiet bool
	c := &cobra.Command{
		Use:   "images [flags]",
		Short: "List the images in the local store",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if format != "" && format != "json" && format != "table" {
				return fmt.Errorf("--format %s: pith images knows table (the default) and json", format)
			}
			store, err := openImages()
			if err != nil {
				return err
			}
			list, err := store.List()
			if err != nil {
				return err
			}
			return printImages(list, format, quiet)
		},
	}
	c.Flags().StringVar(&format, "format", "", "json: one JSON object a line, as docker images --format json")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print image IDs only")
	return c
}

// imageRow is a line of pith images, with docker images --format json's field names.
type imageRow struct {
	Repository string
	Tag        string
	ID         string
	Digest     string
	CreatedAt  string
	Size       string
	Bytes      int64 `json:"VirtualSize"`
}

func printImages(list []image.Entry, format string, quiet bool) error {
	w := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
	if !quiet && format != "json" {
		fmt.Fprintln(w, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
	}
	for _, e := range list {
		repo, tag := "<none>", "<none>"
		if e.Name != "" {
			f := image.Familiar(e.Name)
			if i := strings.LastIndex(f, ":"); i > strings.LastIndex(f, "/") {
				repo, tag = f[:i], f[i+1:]
			} else {
				repo = f
			}
		}
		r := imageRow{Repository: repo, Tag: tag, ID: e.Digest.Hex[:12], Digest: e.Digest.String(),
			CreatedAt: e.Created.Format("2006-01-02 15:04:05 -0700 MST"), Size: image.HumanSize(e.Size), Bytes: e.Size}
		switch {
		case quiet:
			fmt.Fprintln(w, r.ID)
		case format == "json":
			b, _ := json.Marshal(r)
			fmt.Fprintln(w, string(b))
		default:
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Repository, r.Tag, r.ID, ago(e.Created), r.Size)
		}
	}
	return w.Flush()
}

// ago is a time as docker images shows it: "3 minutes ago".
func ago(t time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "less than a minute ago"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	}
	return plural(int(d/(24*time.Hour)), "day") + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

func newTagCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE TARGET",
		Short: "Give an image another name",
		Args:  cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			store, err := openImages()
			if err != nil {
				return err
			}
			return store.Tag(args[0], args[1])
		},
	}
}

func newRmiCommand() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "rmi [-f] IMAGE...",
		Short: "Remove images: by name, the name; by ID, the image (with -f, all its names)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			store, err := openImages()
			if err != nil {
				return err
			}
			if store.Users, err = imageUsers(); err != nil {
				return err
			}
			lines, err := store.Remove(args, force)
			for _, l := range lines {
				fmt.Println(l)
			}
			return err
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "remove an image given by ID with all its names, or one a unikernel uses (its files stay until the unikernel is removed)")
	return c
}

func newSaveCommand() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "save -o FILE IMAGE...",
		Short: "Write images to a tar archive (docker save's format)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("save: name the archive with -o FILE")
			}
			store, err := openImages()
			if err != nil {
				return err
			}
			return store.Save(args, out)
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "the archive to write")
	return c
}

func newLoadCommand() *cobra.Command {
	var in string
	c := &cobra.Command{
		Use:   "load -i FILE",
		Short: "Store the images of a tar archive (from pith save or docker save)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if in == "" {
				return errors.New("load: name the archive with -i FILE")
			}
			store, err := openImages()
			if err != nil {
				return err
			}
			names, err := store.Load(in)
			for _, n := range names {
				fmt.Println("Loaded image:", n)
			}
			return err
		},
	}
	c.Flags().StringVarP(&in, "input", "i", "", "the archive to read")
	return c
}

func newImageCommand() *cobra.Command {
	c := &cobra.Command{Use: "image", Short: "Manage the local image store"}
	// docker image's grammar too: pith image ls, rm, tag, build, push, pull, save, load.
	ls, rm := newImagesCommand(), newRmiCommand()
	ls.Use, ls.Aliases = "ls [flags]", []string{"list"}
	rm.Use = "rm [-f] IMAGE..."
	c.AddCommand(ls, rm, newTagCommand(), newBuildCommand(), newPushCommand(), newPullCommand(), newSaveCommand(), newLoadCommand())
	c.AddCommand(&cobra.Command{
		Use:   "prune",
		Short: "Delete every blob and unpacked image no name reaches",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			store, err := openImages()
			if err != nil {
				return err
			}
			if store.Users, err = imageUsers(); err != nil {
				return err
			}
			n, freed, err := store.Prune()
			if err != nil {
				return err
			}
			fmt.Printf("Deleted %d blobs\nTotal reclaimed space: %s\n", n, image.HumanSize(freed))
			return nil
		},
	})
	return c
}
