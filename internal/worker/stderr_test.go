package worker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// records keeps every slog record's message, for tests that check what stderr forwarded.
type records struct {
	mu   sync.Mutex
	msgs []string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.msgs = append(r.msgs, rec.Message)
	r.mu.Unlock()
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func (r *records) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

func (r *records) find(prefix string) (string, bool) {
	for _, m := range r.messages() {
		if strings.HasPrefix(m, prefix) {
			return m, true
		}
	}
	return "", false
}

// runTail feeds input to a tail keeping n lines and returns what it logged and kept, and how
// many input bytes it left unread.
func runTail(t *testing.T, n int, input string, wrap func(*strings.Reader) io.Reader) (logged, kept []string, unread int) {
	t.Helper()
	src := strings.NewReader(input)
	var r io.Reader = src
	if wrap != nil {
		r = wrap(src)
	}
	rec := &records{}
	tail := newStderrTail(n)
	tail.run(r, slog.New(rec)) // returns at EOF
	<-tail.done
	return rec.messages(), tail.last(), src.Len()
}

func TestStderrTailLines(t *testing.T) {
	logged, kept, unread := runTail(t, 2, "one\ntwo\r\n\nthree", nil)
	if want := []string{"one", "two", "", "three"}; !slices.Equal(logged, want) {
		t.Errorf("logged %q, want %q", logged, want)
	}
	if want := []string{"", "three"}; !slices.Equal(kept, want) {
		t.Errorf("kept %q, want %q", kept, want)
	}
	if unread != 0 {
		t.Errorf("%d bytes left unread", unread)
	}
}

// A line longer than the bound is cut, marked, and the rest of it skipped; reading goes on
// to EOF and later lines are forwarded whole. The old bufio.Scanner stopped for good at the
// first line over 1 MiB.
func TestStderrTailTruncatesLongLines(t *testing.T) {
	long := strings.Repeat("x", 2<<20)
	exact := strings.Repeat("y", maxStderrLine)
	input := "before\n" + long + "\n" + exact + "\n" + "after 1\n" + long + "after 2\n"
	for name, wrap := range map[string]func(*strings.Reader) io.Reader{
		"whole":  nil,
		"halves": func(r *strings.Reader) io.Reader { return iotest.HalfReader(r) },
		"bytes":  func(r *strings.Reader) io.Reader { return iotest.OneByteReader(r) },
	} {
		t.Run(name, func(t *testing.T) {
			logged, kept, unread := runTail(t, 20, input, wrap)
			cut := strings.Repeat("x", maxStderrLine) + fmt.Sprintf("…[truncated %d bytes]", len(long)-maxStderrLine)
			// the second long line runs into "after 2": the whole of it is one line
			cut2 := strings.Repeat("x", maxStderrLine) + fmt.Sprintf("…[truncated %d bytes]", len(long)+len("after 2")-maxStderrLine)
			want := []string{"before", cut, exact, "after 1", cut2}
			if !slices.Equal(logged, want) {
				t.Errorf("logged %s, want %s", brief(logged), brief(want))
			}
			if !slices.Equal(kept, want) {
				t.Errorf("kept %s, want %s", brief(kept), brief(want))
			}
			if unread != 0 {
				t.Errorf("%d bytes left unread: stderr must be drained to EOF", unread)
			}
		})
	}
}

func TestStderrTailCutsAtCharacterBoundary(t *testing.T) {
	// "a" then 2-byte characters: the bound falls in the middle of one.
	line := "a" + strings.Repeat("é", maxStderrLine)
	logged, _, _ := runTail(t, 1, line+"\nnext\n", nil)
	if len(logged) != 2 || logged[1] != "next" {
		t.Fatalf("logged %s", brief(logged))
	}
	head, marker, ok := strings.Cut(logged[0], "…[truncated ")
	if !ok || !utf8.ValidString(head) || len(head) != maxStderrLine-1 {
		t.Fatalf("cut line: %d bytes, valid %v, marker %v", len(head), utf8.ValidString(head), ok)
	}
	if want := fmt.Sprintf("%d bytes]", len(line)-len(head)); marker != want {
		t.Errorf("marker %q, want %q", marker, want)
	}
}

// brief shows lines by length and ends, not 64 KiB of x.
func brief(lines []string) string {
	var b bytes.Buffer
	for _, l := range lines {
		if len(l) > 40 {
			fmt.Fprintf(&b, "[%d bytes %q…%q] ", len(l), l[:10], l[len(l)-30:])
		} else {
			fmt.Fprintf(&b, "%q ", l)
		}
	}
	return b.String()
}
