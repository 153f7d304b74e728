package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/host/image"
)

func newPullCommand() *cobra.Command {
	var insecure bool
	c := &cobra.Command{
		Use:   "pull [--insecure] NAME[:TAG|@DIGEST]",
		Short: "Fetch an image from a registry into the local store",
		Long: `Pull fetches an image (its linux/amd64 one, from a multi-platform index) and stores it
under its name. Credentials come from Docker's config.json and credential helpers (docker
login); a registry on localhost or a loopback address is spoken to over plain HTTP.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			_, err := pullImage(args[0], insecure)
			return err
		},
	}
	c.Flags().BoolVar(&insecure, "insecure", false, "plain HTTP, or HTTPS with any certificate, for this registry")
	return c
}

func newPushCommand() *cobra.Command {
	var insecure bool
	c := &cobra.Command{
		Use:   "push [--insecure] NAME[:TAG]",
		Short: "Send an image from the local store to a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			store, err := openImages()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
			defer stop()
			p := newProgress(os.Stderr, "pushed")
			err = store.Push(ctx, args[0], "", image.RemoteOptions{Insecure: insecure, Progress: p.update})
			p.finish()
			if err == nil {
				fmt.Fprintf(os.Stderr, "pushed %s\n", args[0])
			}
			return err
		},
	}
	c.Flags().BoolVar(&insecure, "insecure", false, "plain HTTP, or HTTPS with any certificate, for this registry")
	return c
}

// pullImage pulls ref into the user's store, with progress on stderr.
func pullImage(ref string, insecure bool) (v1.Image, error) {
	store, err := openImages()
	if err != nil {
		return nil, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()
	p := newProgress(os.Stderr, "pulled")
	img, err := store.Pull(ctx, ref, image.RemoteOptions{Insecure: insecure, Progress: p.update})
	p.finish()
	if err != nil {
		return nil, err
	}
	d, _ := img.Digest()
	fmt.Fprintf(os.Stderr, "pulled %s %s\n", ref, d)
	return img, nil
}

// progress shows per-layer progress: on a terminal, a line per layer rewritten as
// bytes arrive; otherwise one line per layer when it is done.
type progress struct {
	w        io.Writer
	verb     string
	terminal bool
	current  v1.Hash
	last     time.Time
	open     bool // a terminal line is being rewritten
}

func newProgress(w *os.File, verb string) *progress {
	_, err := unix.IoctlGetTermios(int(w.Fd()), unix.TCGETS)
	return &progress{w: w, verb: verb, terminal: err == nil}
}

func (p *progress) update(i, n int, d v1.Hash, done, size int64, reused bool) {
	label := fmt.Sprintf("layer %d/%d %s", i+1, n, d.Hex[:12])
	complete := reused || (size > 0 && done >= size)
	switch {
	case reused:
		p.line(label + ": already here")
	case p.terminal && !complete:
		if d == p.current && time.Since(p.last) < 100*time.Millisecond {
			return
		}
		p.current, p.last, p.open = d, time.Now(), true
		fmt.Fprintf(p.w, "\r\033[K%s: %s / %s", label, image.HumanSize(done), image.HumanSize(size))
	case complete:
		p.line(fmt.Sprintf("%s: %s %s", label, p.verb, image.HumanSize(size)))
	}
}

// line ends the layer's rewritten line, if any, with its final text.
func (p *progress) line(s string) {
	if p.open {
		fmt.Fprint(p.w, "\r\033[K")
		p.open = false
	}
	fmt.Fprintln(p.w, s)
}

// finish ends a line left open by a failure.
func (p *progress) finish() {
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
}
