package worker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"unicode/utf8"
)

// maxStderrLine bounds one forwarded stderr line, in bytes. A longer line is logged (and kept
// in the tail) as its first maxStderrLine bytes, cut at a character boundary, followed by
// "…[truncated N bytes]"; the rest of it is read and thrown away. 64 KiB keeps any useful
// message or traceback line whole while a worker dumping a tensor or a base64 blob on one
// line costs at most 64 KiB per kept line (20 lines: 1.3 MiB), never unbounded memory.
const maxStderrLine = 64 << 10

// stderrTail forwards a worker's stderr to slog line by line and keeps the last lines for
// the error that reports the worker's death.
//
// A line that is a worker's log record (recordMarker + JSON, see parseRecord) is logged at
// its level with its message and logger=<name> (traceback=<text> with an exception), and
// kept in the tail as text. Any other line is logged as it is, at Info with stream=stderr.
//
// It reads until EOF (or until the pipe is closed under it), whatever the lines look like:
// a worker whose stderr nobody drains blocks on its next write once the pipe buffer is full,
// so stopping early would hang it.
type stderrTail struct {
	mu    sync.Mutex
	lines []string
	max   int
	next  int
	full  bool
	done  chan struct{}
}

func newStderrTail(max int) *stderrTail {
	return &stderrTail{lines: make([]string, max), max: max, done: make(chan struct{})}
}

func (t *stderrTail) run(r io.Reader, log *slog.Logger) {
	defer close(t.done)
	// The buffer is the line bound: ReadSlice hands back at most this much, never grows it.
	br := bufio.NewReaderSize(r, maxStderrLine)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			kept := keepWholeRunes(line)
			text := string(kept) // copied: line is only valid until the next read
			cut := len(line) - len(kept)
			dropped, err := discardLine(br)
			dropped += cut
			if dropped > 0 {
				t.add(log, fmt.Sprintf("%s…[truncated %d bytes]", text, dropped), dropped)
			} else {
				t.add(log, strings.TrimSuffix(text, "\r"), 0) // exactly maxStderrLine bytes
			}
			if err != nil {
				return
			}
			continue
		}
		if len(line) > 0 { // a last line without a newline counts too
			line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			t.add(log, string(line), 0)
		}
		if err != nil { // EOF, or the pipe closed by die(): the worker is gone
			return
		}
	}
}

// discardLine reads and drops the rest of an over-long line, newline included, and returns
// how many bytes of text it dropped (the newline not counted).
func discardLine(br *bufio.Reader) (int, error) {
	n := 0
	for {
		chunk, err := br.ReadSlice('\n')
		n += len(chunk)
		switch {
		case err == nil:
			return n - 1, nil
		case !errors.Is(err, bufio.ErrBufferFull):
			return n, err
		}
	}
}

// keepWholeRunes drops a multi-byte UTF-8 character cut in two at the end of b, so a
// truncated line stays valid text.
func keepWholeRunes(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}

func (t *stderrTail) add(log *slog.Logger, line string, truncated int) {
	if truncated > 0 {
		log.LogAttrs(context.Background(), slog.LevelInfo, line, slog.String("stream", "stderr"), slog.Int("truncated_bytes", truncated))
		t.keep(line)
		return
	}
	if rec, ok := parseRecord(line); ok {
		attrs := []slog.Attr{slog.String("logger", rec.Logger)}
		if rec.Exc != "" {
			attrs = append(attrs, slog.String("traceback", rec.Exc))
		}
		if rec.TraceID != "" {
			// made during a traced call: the record joins the handler span's trace
			attrs = append(attrs, slog.String("trace_id", rec.TraceID), slog.String("span_id", rec.SpanID))
		}
		log.LogAttrs(context.Background(), rec.slogLevel(), rec.Msg, attrs...)
		// The tail is read by people: the record's text, line by line, not its JSON.
		t.keep(strings.Split(rec.Msg, "\n")...)
		if rec.Exc != "" {
			t.keep(strings.Split(rec.Exc, "\n")...)
		}
		return
	}
	log.LogAttrs(context.Background(), slog.LevelInfo, line, slog.String("stream", "stderr"))
	t.keep(line)
}

func (t *stderrTail) keep(lines ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, line := range lines {
		t.lines[t.next] = line
		t.next = (t.next + 1) % t.max
		if t.next == 0 {
			t.full = true
		}
	}
}

// recordMarker starts a log record written by the worker (python/mlbridge_worker/log.py):
// an ASCII unit separator (text and C libraries do not begin a line with it, and unlike 0x1E
// Python's str.splitlines does not split at it), a name and a format version, then one line
// of JSON.
const recordMarker = "\x1fmlbridge/1 "

// workerRecord is one Python log record. Level is the logging module's number (DEBUG 10,
// INFO 20, WARNING 30, ERROR 40, CRITICAL 50, or a custom level); Exc a formatted traceback.
type workerRecord struct {
	Level           int
	Logger, Msg     string
	Exc             string
	TraceID, SpanID string // the span current where the record was made (lowercase hex), if any
}

// slogLevel maps a Python level to slog's: below INFO is Debug, WARNING is Warn, ERROR and
// CRITICAL are Error; a custom level counts as the standard one at or below it.
func (r workerRecord) slogLevel() slog.Level {
	switch {
	case r.Level >= 40:
		return slog.LevelError
	case r.Level >= 30:
		return slog.LevelWarn
	case r.Level >= 20:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

// parseRecord recognizes a worker's log record. Any other line — a print, a C library's
// output, or a record cut by the line bound — is not one and is forwarded as it is.
func parseRecord(line string) (workerRecord, bool) {
	body, found := strings.CutPrefix(line, recordMarker)
	if !found {
		return workerRecord{}, false
	}
	var p struct {
		Level  *int    `json:"level"`
		Logger string  `json:"logger"`
		Msg    *string `json:"msg"`
		Exc    string  `json:"exc"`
		Trace  string  `json:"trace_id"`
		Span   string  `json:"span_id"`
	}
	if err := json.Unmarshal([]byte(body), &p); err != nil || p.Level == nil || p.Msg == nil {
		return workerRecord{}, false
	}
	return workerRecord{Level: *p.Level, Logger: p.Logger, Msg: *p.Msg, Exc: p.Exc, TraceID: p.Trace, SpanID: p.Span}, true
}

// last returns the kept lines, oldest first.
func (t *stderrTail) last() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.full {
		return append([]string(nil), t.lines[:t.next]...)
	}
	return append(append([]string(nil), t.lines[t.next:]...), t.lines[:t.next]...)
}
