package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// registryServer is an in-memory registry on loopback; damage, if set, changes the
// body of each blob it serves.
func registryServer(t *testing.T, damage func([]byte) []byte) string {
	t.Helper()
	reg := registry.New()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if damage == nil || r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") {
			reg.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		reg.ServeHTTP(rec, r)
		body := damage(rec.Body.Bytes())
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(rec.Code)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestPushPullRoundTrip(t *testing.T) {
	addr := registryServer(t, nil)
	s := openTestStore(t)
	d := put(t, s, testImage(t, "program"), addr+"/team/app:1")
	var lines []string
	o := RemoteOptions{Progress: func(i, n int, _ v1.Hash, done, size int64, reused bool) {
		if done == size {
			lines = append(lines, fmt.Sprintf("%d/%d reused=%v", i+1, n, reused))
		}
	}}
	if err := s.Push(context.Background(), addr+"/team/app:1", "", o); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(lines, ","); got != "1/2 reused=false,2/2 reused=false" {
		t.Fatalf("push progress: %s", got)
	}
	s2 := openTestStore(t)
	lines = nil
	img, err := s2.Pull(context.Background(), addr+"/team/app:1", o)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := img.Digest(); got != d {
		t.Fatalf("pulled %s, pushed %s", got, d)
	}
	if got := strings.Join(lines, ","); got != "1/2 reused=false,2/2 reused=false" {
		t.Fatalf("pull progress: %s", got)
	}
	if err := Verify(img); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(names(t, s2)); got != fmt.Sprintf("[%s/team/app:1=%s]", addr, d.Hex[:12]) {
		t.Fatalf("after pull: %s", got)
	}
}

func TestFailedPullLeavesStoreUnchanged(t *testing.T) {
	good := registryServer(t, nil)
	src := openTestStore(t)
	put(t, src, testImage(t, "new program"), good+"/app:1")
	if err := src.Push(context.Background(), good+"/app:1", "", RemoteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The same registry, but every blob arrives with a byte changed.
	bad := registryServer(t, func(b []byte) []byte {
		b = bytes.Clone(b)
		if len(b) > 0 {
			b[len(b)/2] ^= 1
		}
		return b
	})
	dst := openTestStore(t)
	if err := src.Push(context.Background(), good+"/app:1", bad+"/app:1", RemoteOptions{}); err != nil {
		t.Fatal(err)
	}
	put(t, dst, testImage(t, "old program"), bad+"/app:1")
	before, beforeBlobs := names(t, dst), blobs(t, dst)
	_, err := dst.Pull(context.Background(), bad+"/app:1", RemoteOptions{})
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("pull of damaged blobs: %v, want a one-line error", err)
	}
	if !strings.Contains(err.Error(), "a blob arrived damaged") {
		t.Fatalf("pull of damaged blobs: %v, want it to name the digest mismatch", err)
	}
	if fmt.Sprint(names(t, dst)) != fmt.Sprint(before) || fmt.Sprint(blobs(t, dst)) != fmt.Sprint(beforeBlobs) {
		t.Fatalf("a failed pull changed the store: %v %v", names(t, dst), blobs(t, dst))
	}
	if e, _ := os.ReadDir(filepath.Join(dst.dir, "tmp")); len(e) != 0 {
		t.Fatalf("a failed pull left tmp/%s", e[0].Name())
	}
}

func TestRegistryFailuresAreOneLine(t *testing.T) {
	// A registry that refuses everyone.
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
	}))
	defer refusing.Close()
	// One that takes connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	// And a port where nothing listens.
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()

	s := openTestStore(t)
	for _, tc := range []struct{ ref, want string }{
		{strings.TrimPrefix(refusing.URL, "http://") + "/app:1", "refused access (401 Unauthorized): log in with docker login"},
		{ln.Addr().String() + "/app:1", "did not answer in time"},
		{closedAddr + "/app:1", "nothing answers at " + closedAddr},
		{registryServer(t, nil) + "/missing:1", "has no such image"},
	} {
		start := time.Now()
		_, err := s.Pull(context.Background(), tc.ref, RemoteOptions{Timeout: 300 * time.Millisecond})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("pull %s: %v, want one line with %q", tc.ref, err, tc.want)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("pull %s took %v", tc.ref, d)
		}
	}
	if got := names(t, s); len(got) != 0 {
		t.Fatalf("failed pulls named %v", got)
	}
}
