package cli

import (
	"bytes"
	"testing"
	"time"
)

// A warm run's request reaches the server as sent, bytes that are not UTF-8 included, and
// a request cut short or padded is refused rather than read wrong.
func TestWarmRequestRoundTrip(t *testing.T) {
	r := &warmRequest{
		App: []byte("/bin/app"), Args: [][]byte{[]byte("pith-kernel"), []byte("run"), {}, []byte("\xff\xfe")},
		AppArgsAt: 2, Env: [][]byte{[]byte("A=1"), []byte("B=\x00x")},
		Mounts:  []warmMount{{Host: []byte("/h"), Guest: []byte("/g"), Writable: true}, {Host: []byte("/x")}},
		Workdir: []byte("/w"), Trace: true, Deadline: 3 * time.Second, ProcEnv: [][]byte{[]byte("HOME=/root")},
		Dir: []byte("/d"), Umask: 0o22,
	}
	b := r.encode()
	got, err := decodeWarmRequest(b)
	// encode is one-to-one (an empty byte string and nil alike), so the same bytes again
	// mean the same request.
	if err != nil || !bytes.Equal(got.encode(), b) || string(got.Args[3]) != "\xff\xfe" ||
		!got.Mounts[0].Writable || got.Deadline != 3*time.Second || got.Umask != 0o22 {
		t.Fatalf("decoded %+v, %v; want %+v", got, err, r)
	}
	for n := 0; n < len(b); n++ {
		if _, err := decodeWarmRequest(b[:n]); err == nil {
			t.Errorf("a request cut to %d of %d bytes was accepted", n, len(b))
		}
	}
	if _, err := decodeWarmRequest(append(b, 0)); err == nil {
		t.Error("a request with a byte too many was accepted")
	}
	huge := append([]byte{1, '/'}, 0xff, 0xff, 0xff, 0xff, 0x0f) // an argument list of 4 G items
	if _, err := decodeWarmRequest(huge); err == nil {
		t.Error("an impossible list length was accepted")
	}
}
