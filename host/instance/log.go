package instance

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Entry is one line of a log file, as Docker's json-file driver writes it: the text with
// its newline, the stream, the time it was written.
type Entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// Log sizes: a log file is rotated at LogMaxSize, and LogFiles files are kept.
const (
	LogMaxSize = 10 << 20
	LogFiles   = 3
	// maxLine: a longer line is written in pieces (Docker's is 16 KiB too).
	maxLine = 16 << 10
)

// LogWriter writes a unikernel's output to its log as Entry lines, rotated. It never
// fails its writer: what cannot be written (a full disk) is dropped, counted, and the
// loss noted in the log once writing works again, so that a guest never stops or dies
// because its log cannot grow.
type LogWriter struct {
	path    string
	maxSize int64
	files   int

	mu      sync.Mutex
	f       *os.File
	size    int64
	partial map[string][]byte // per stream: text not yet ended by a newline
	dropped int64
	flush   *time.Timer
}

// NewLogWriter opens (appending) the log at path.
func NewLogWriter(path string, maxSize int64, files int) *LogWriter {
	return &LogWriter{path: path, maxSize: maxSize, files: files, partial: map[string][]byte{}}
}

// Stream is a writer of stream ("stdout" or "stderr") to the log.
func (w *LogWriter) Stream(stream string) io.Writer { return streamWriter{w, stream} }

type streamWriter struct {
	w      *LogWriter
	stream string
}

func (s streamWriter) Write(p []byte) (int, error) {
	s.w.write(s.stream, p)
	return len(p), nil
}

// partialDelay is how long text without a newline (a prompt) waits for the rest of its
// line before it is written as it is.
const partialDelay = 500 * time.Millisecond

func (w *LogWriter) write(stream string, p []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	buf := append(w.partial[stream], p...)
	for {
		i := strings.IndexByte(string(buf), '\n')
		if i < 0 && len(buf) < maxLine {
			break
		}
		n := i + 1
		if i < 0 || n > maxLine {
			n = maxLine
		}
		w.entryLocked(Entry{Log: string(buf[:n]), Stream: stream, Time: now})
		buf = buf[n:]
	}
	w.partial[stream] = append([]byte(nil), buf...)
	if len(buf) > 0 && w.flush == nil {
		w.flush = time.AfterFunc(partialDelay, w.Flush)
	}
}

// Flush writes out text still waiting for its newline.
func (w *LogWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flush = nil
	for _, stream := range []string{"stdout", "stderr"} {
		if b := w.partial[stream]; len(b) > 0 {
			w.entryLocked(Entry{Log: string(b), Stream: stream, Time: time.Now()})
			w.partial[stream] = nil
		}
	}
}

// Close flushes and closes the log.
func (w *LogWriter) Close() {
	w.Flush()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.flush != nil {
		w.flush.Stop()
	}
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}

// entryLocked writes one entry, rotating first if it would pass the size cap.
// Preconditions: w.mu is held.
func (w *LogWriter) entryLocked(e Entry) {
	line, _ := json.Marshal(e)
	line = append(line, '\n')
	if w.dropped > 0 {
		note, _ := json.Marshal(Entry{Log: fmt.Sprintf("pith: %d bytes of output were lost: the log could not be written (disk full?)\n", w.dropped),
			Stream: "stderr", Time: e.Time})
		line = append(append(note, '\n'), line...)
	}
	if w.f != nil && w.size+int64(len(line)) > w.maxSize && w.size > 0 {
		w.f.Close()
		w.f = nil
		w.rotate()
	}
	if w.f == nil {
		f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			w.dropped += int64(len(e.Log))
			return
		}
		fi, _ := f.Stat()
		w.f, w.size = f, fi.Size()
	}
	n, err := w.f.Write(line)
	w.size += int64(n)
	if err != nil {
		// A part-written line is ended, so that the next starts on its own line.
		if n > 0 {
			if k, _ := w.f.Write([]byte("\n")); k == 1 {
				w.size++
			}
		}
		w.dropped += int64(len(e.Log))
		w.f.Close() // reopened for the next entry, which may find space again
		w.f = nil
		return
	}
	w.dropped = 0
}

// rotate shifts log.json.N-1 to log.json.N ... log.json to log.json.1, dropping the oldest.
func (w *LogWriter) rotate() {
	for n := w.files - 1; n >= 1; n-- {
		from := w.path
		if n > 1 {
			from = fmt.Sprintf("%s.%d", w.path, n-1)
		}
		os.Rename(from, fmt.Sprintf("%s.%d", w.path, n))
	}
	if w.files <= 1 {
		os.Remove(w.path)
	}
}

// LogFiles are a log's files, oldest first.
func logFiles(path string) []string {
	var out []string
	for n := LogFiles - 1; n >= 1; n-- {
		out = append(out, fmt.Sprintf("%s.%d", path, n))
	}
	return append(out, path)
}

// ReadLog calls f with each entry of the log at path, oldest first; a line that is not
// an entry (cut short by a full disk or a kill) is skipped. It returns where it stopped,
// for FollowLog.
func ReadLog(path string, f func(Entry)) (Position, error) {
	var pos Position
	for _, p := range logFiles(path) {
		file, err := os.Open(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return pos, err
		}
		n := readEntries(file, f)
		if p == path {
			pos = Position{Offset: n, inode: inode(file)}
		}
		file.Close()
	}
	return pos, nil
}

// Position is a place in a log's current file.
type Position struct {
	Offset int64
	inode  uint64
}

func readEntries(r io.Reader, f func(Entry)) int64 {
	br := bufio.NewReaderSize(r, 64<<10)
	var read int64
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return read // a line without its newline is still being written
		}
		read += int64(len(line))
		var e Entry
		if json.Unmarshal(line, &e) == nil && e.Stream != "" {
			f(e)
		}
	}
}

// FollowLog calls f with each entry written to the log at path after pos, following
// rotation, until done returns true with nothing more to read.
func FollowLog(path string, pos Position, f func(Entry), done func() bool) error {
	var file *os.File
	off, ino := pos.Offset, pos.inode
	defer func() {
		if file != nil {
			file.Close()
		}
	}()
	for {
		finished := done() // before reading: what was written before it ended is read
		if file == nil {
			if fl, err := os.Open(path); err == nil {
				file = fl
				if i := inode(fl); i != ino {
					off, ino = 0, i // rotated (or created) since pos
				}
			}
		}
		if file != nil {
			file.Seek(off, io.SeekStart)
			off += readEntries(file, f)
			// Rotated: the old file was finished above; go on with the new one.
			if fi, err := os.Stat(path); err == nil && inodeOf(fi) != ino {
				file.Close()
				file = nil
				continue
			}
		}
		if finished {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}
