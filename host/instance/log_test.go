package instance

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readAll(t *testing.T, path string) []Entry {
	t.Helper()
	var out []Entry
	if _, err := ReadLog(path, func(e Entry) { out = append(out, e) }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLogLinesCarryStreamAndTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.json")
	w := NewLogWriter(path, 1<<20, 3)
	before := time.Now()
	w.Stream("stdout").Write([]byte("hello\nwor"))
	w.Stream("stderr").Write([]byte("oops\n"))
	w.Stream("stdout").Write([]byte("ld\n"))
	w.Close()
	got := readAll(t, path)
	want := []Entry{{Log: "hello\n", Stream: "stdout"}, {Log: "oops\n", Stream: "stderr"}, {Log: "world\n", Stream: "stdout"}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i].Log != want[i].Log || got[i].Stream != want[i].Stream || got[i].Time.Before(before) || got[i].Time.After(time.Now()) {
			t.Errorf("entry %d = %+v, want %+v at a time of the test", i, got[i], want[i])
		}
	}
	raw, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(raw), `{"log":"hello\n","stream":"stdout","time":"`) {
		t.Errorf("not Docker's json-file line: %q", raw)
	}
}

func TestLogTextWithoutNewlineIsWrittenAfterAWhile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.json")
	w := NewLogWriter(path, 1<<20, 3)
	defer w.Close()
	w.Stream("stdout").Write([]byte("prompt> "))
	time.Sleep(2 * partialDelay)
	if got := readAll(t, path); len(got) != 1 || got[0].Log != "prompt> " {
		t.Fatalf("got %+v, want the prompt alone", got)
	}
	long := strings.Repeat("x", 3*maxLine+5) + "\n"
	w.Stream("stdout").Write([]byte(long))
	got := readAll(t, path)
	var joined strings.Builder
	for _, e := range got[1:] {
		if len(e.Log) > maxLine {
			t.Errorf("an entry of %d bytes, over %d", len(e.Log), maxLine)
		}
		joined.WriteString(e.Log)
	}
	if joined.String() != long {
		t.Errorf("a long line came back as %d bytes in %d entries", joined.Len(), len(got)-1)
	}
}

func TestLogIsRotatedAndCapped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log.json")
	const max = 4096
	w := NewLogWriter(path, max, 3)
	const lines = 500
	for i := range lines {
		fmt.Fprintf(w.Stream("stdout"), "line %04d\n", i)
	}
	w.Close()
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		fi, _ := e.Info()
		if fi.Size() > max {
			t.Errorf("%s is %d bytes, over the %d cap", e.Name(), fi.Size(), max)
		}
	}
	if strings.Join(names, " ") != "log.json log.json.1 log.json.2" {
		t.Errorf("files %v, want log.json, .1 and .2", names)
	}
	got := readAll(t, path)
	if len(got) < 60 || len(got) >= lines {
		t.Fatalf("%d entries kept of %d", len(got), lines)
	}
	// The newest, in order, ending with the last.
	for i, e := range got {
		want := fmt.Sprintf("line %04d\n", lines-len(got)+i)
		if e.Log != want {
			t.Fatalf("entry %d is %q, want %q", i, e.Log, want)
		}
	}
}

// A full disk loses output, never the guest: writes succeed, and the loss is noted once
// the log can be written again.
func TestLogOnAFullDiskDropsAndNotes(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Fatalf("/dev/full is needed to fill a disk: %v", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "log.json")
	os.Symlink("/dev/full", path)
	w := NewLogWriter(path, 1<<20, 3)
	for range 10 {
		if n, err := w.Stream("stdout").Write([]byte("lost line\n")); n != 10 || err != nil {
			t.Fatalf("a write on a full disk returned %d, %v: the guest would see it", n, err)
		}
	}
	os.Remove(path) // space again
	w.Stream("stdout").Write([]byte("back\n"))
	w.Close()
	got := readAll(t, path)
	if len(got) != 2 || !strings.Contains(got[0].Log, "100 bytes of output were lost") || got[0].Stream != "stderr" || got[1].Log != "back\n" {
		t.Fatalf("got %+v, want the loss noted, then the line", got)
	}
}

func TestFollowLogSeesNewLinesAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.json")
	w := NewLogWriter(path, 2048, 3)
	fmt.Fprintf(w.Stream("stdout"), "old\n")
	var got []string
	pos, _ := ReadLog(path, func(e Entry) { got = append(got, e.Log) })
	finished := make(chan struct{})
	followed := make(chan []string)
	go func() {
		var lines []string
		FollowLog(path, pos, func(e Entry) { lines = append(lines, e.Log) }, func() bool {
			select {
			case <-finished:
				return true
			default:
				return false
			}
		})
		followed <- lines
	}()
	for i := range 100 { // several rotations
		fmt.Fprintf(w.Stream("stdout"), "new %03d\n", i)
		if i%10 == 0 {
			time.Sleep(120 * time.Millisecond)
		}
	}
	w.Close()
	close(finished)
	lines := <-followed
	if len(got) != 1 || got[0] != "old\n" {
		t.Errorf("read before following: %q", got)
	}
	// Lines in a file rotated out twice between two polls are lost; the rest arrive, in order.
	if len(lines) < 50 || lines[len(lines)-1] != "new 099\n" {
		t.Fatalf("followed %d lines, ending %q", len(lines), lines[len(lines)-1:])
	}
	for i := 1; i < len(lines); i++ {
		if lines[i] <= lines[i-1] {
			t.Fatalf("out of order: %q after %q", lines[i], lines[i-1])
		}
	}
}
