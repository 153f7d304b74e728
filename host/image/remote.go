package image

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// RemoteOptions say how to reach a registry. Credentials come from Docker's
// config.json and its credential helpers (authn.DefaultKeychain); a registry on
// localhost or a loopback address is spoken to over plain HTTP, as Docker does.
type RemoteOptions struct {
	Insecure bool          // plain HTTP, or HTTPS with any certificate, for any registry
	Timeout  time.Duration // for connecting and for each answer; 0: 30 seconds
	Progress Progress      // per layer
}

func (o RemoteOptions) options(ctx context.Context) []remote.Option {
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: timeout}).DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   4,
	}
	if o.Insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	return []remote.Option{
		remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithTransport(tr),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}),
		remote.WithRetryBackoff(remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Steps: 2}),
	}
}

// remoteName reads a registry reference: a tag, or repository@digest.
func remoteName(ref string, insecure bool) (name.Reference, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("%q is not an image name (NAME[:TAG] or NAME@sha256:DIGEST)", ref)
	}
	return r, nil
}

// Pull fetches ref into the store, under its name, and returns the image. Nothing is
// named until every blob is stored and checked, so a failed pull leaves the store as it
// was (but for whole, unnamed blobs, which the next pull reuses and prune removes).
func (s *Store) Pull(ctx context.Context, ref string, o RemoteOptions) (v1.Image, error) {
	r, err := remoteName(ref, o.Insecure)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(r, o.options(ctx)...)
	if err != nil {
		return nil, remoteError("pull", r, err)
	}
	if err := s.put(img, []string{r.Name()}, o.Progress); err != nil {
		return nil, remoteError("pull", r, err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	return s.Image(d)
}

// Push sends the stored image local to the registry as dest (local's own name if
// empty). Each blob is checked against its digest as it is read.
func (s *Store) Push(ctx context.Context, local, dest string, o RemoteOptions) error {
	img, full, err := s.Resolve(local)
	if err != nil {
		return err
	}
	if dest == "" {
		if full == "" {
			return fmt.Errorf("%s is a digest: give the name to push it as", local)
		}
		dest = full
	}
	r, err := remoteName(dest, o.Insecure)
	if err != nil {
		return err
	}
	opts := o.options(ctx)
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
		updates := make(chan v1.Update, 16)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range updates {
				if o.Progress != nil && u.Error == nil && u.Complete < size {
					o.Progress(i, len(layers), d, u.Complete, size, false)
				}
			}
		}()
		err = remote.WriteLayer(r.Context(), l, append(opts, remote.WithProgress(updates))...)
		wg.Wait()
		if err != nil {
			return remoteError("push", r, err)
		}
		if o.Progress != nil {
			o.Progress(i, len(layers), d, size, size, false)
		}
	}
	if err := remote.Write(r, img, opts...); err != nil {
		return remoteError("push", r, err)
	}
	return nil
}

// remoteError puts a registry failure in one line, with what to do about it.
func remoteError(op string, r name.Reference, err error) error {
	reg := r.Context().RegistryStr()
	var te *transport.Error
	var ne net.Error
	switch {
	case errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden):
		return fmt.Errorf("%s %s: the registry refused access (%d %s): log in with docker login %s, or check the name",
			op, r, te.StatusCode, http.StatusText(te.StatusCode), reg)
	case errors.As(err, &te) && te.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s %s: the registry has no such image; check the name and tag", op, r)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s %s: nothing answers at %s: check the address, and that the registry is running", op, r, reg)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%s %s: %s did not answer in time: check the address, and that the registry is up", op, r, reg)
	case strings.Contains(err.Error(), "error verifying sha256 checksum") || strings.Contains(err.Error(), "arrived with digest"):
		return fmt.Errorf("%s %s: a blob arrived damaged (its bytes do not match its digest): try again; if it persists, the registry's copy is damaged", op, r)
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("%s %s: %s speaks plain HTTP: use --insecure if you trust the network to it", op, r, reg)
	case strings.Contains(err.Error(), "x509:") || strings.Contains(err.Error(), "tls:"):
		return fmt.Errorf("%s %s: %s's certificate is not trusted (%s): add its CA to the system's, or use --insecure", op, r, reg, firstLine(err))
	}
	return fmt.Errorf("%s %s: %s", op, r, firstLine(err))
}

// firstLine is an error's first line: registries send pages of JSON.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
