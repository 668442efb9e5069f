package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge/internal/errs"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// entry is one captured slog record: its level, message, and every attribute (those added
// with Logger.With included) in order, so a key given twice shows twice.
type entry struct {
	Level slog.Level
	Msg   string
	Attrs []slog.Attr
}

// values returns every value logged under key, as text.
func (e entry) values(key string) []string {
	var out []string
	for _, a := range e.Attrs {
		if a.Key == key {
			out = append(out, a.Value.String())
		}
	}
	return out
}

// String renders the whole record, for counting what a reader of the log would see.
func (e entry) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", e.Level, e.Msg)
	for _, a := range e.Attrs {
		fmt.Fprintf(&b, " %s=%s", a.Key, a.Value)
	}
	return b.String()
}

type captureStore struct {
	mu      sync.Mutex
	entries []entry
}

// capture is a slog.Handler keeping whole records.
type capture struct {
	store *captureStore
	attrs []slog.Attr
}

func newCapture() *capture { return &capture{store: &captureStore{}} }

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	e := entry{Level: r.Level, Msg: r.Message, Attrs: slices.Clone(c.attrs)}
	r.Attrs(func(a slog.Attr) bool { e.Attrs = append(e.Attrs, a); return true })
	c.store.mu.Lock()
	c.store.entries = append(c.store.entries, e)
	c.store.mu.Unlock()
	return nil
}
func (c *capture) WithAttrs(as []slog.Attr) slog.Handler {
	return &capture{store: c.store, attrs: append(slices.Clone(c.attrs), as...)}
}
func (c *capture) WithGroup(string) slog.Handler { return c } // not used by the worker

func (c *capture) all() []entry {
	c.store.mu.Lock()
	defer c.store.mu.Unlock()
	return slices.Clone(c.store.entries)
}

// await returns the first record whose message is msg, waiting for the stderr goroutine.
func (c *capture) await(t *testing.T, msg string) entry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, e := range c.all() {
			if e.Msg == msg {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q never reached the log; got %v", msg, c.all())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func rec(level int, logger, msg, exc string) string {
	line := fmt.Sprintf(`%s{"level":%d,"logger":%q,"msg":%q`, recordMarker, level, logger, msg)
	if exc != "" {
		line += fmt.Sprintf(`,"exc":%q`, exc)
	}
	return line + "}\n"
}

// Records keep their level and logger, lose their JSON; anything else is a raw line, at Info
// with stream=stderr, even when it looks almost like a record.
func TestStderrTailRecords(t *testing.T) {
	input := rec(10, "dspy", "debug one", "") +
		rec(20, "httpx", "info one", "") +
		rec(25, "app", "custom level", "") +
		rec(30, "langchain", "warning one", "") +
		rec(40, "app", "two\nlines", "Traceback (most recent call last):\n  boom\nValueError: x") +
		rec(50, "app", "critical one", "") +
		"plain C library line\n" +
		recordMarker + `{"level":30,"msg":` + "\n" + // cut JSON: not a record
		recordMarker + `{"logger":"x","msg":"no level"}` + "\n" +
		`{"level":40,"logger":"x","msg":"no marker"}` + "\n"
	c := newCapture()
	tail := newStderrTail(20)
	tail.run(strings.NewReader(input), slog.New(c))

	type want struct {
		level  slog.Level
		msg    string
		logger string // "" for a raw line (stream=stderr instead)
	}
	wants := []want{
		{slog.LevelDebug, "debug one", "dspy"},
		{slog.LevelInfo, "info one", "httpx"},
		{slog.LevelInfo, "custom level", "app"},
		{slog.LevelWarn, "warning one", "langchain"},
		{slog.LevelError, "two\nlines", "app"},
		{slog.LevelError, "critical one", "app"},
		{slog.LevelInfo, "plain C library line", ""},
		{slog.LevelInfo, recordMarker + `{"level":30,"msg":`, ""},
		{slog.LevelInfo, recordMarker + `{"logger":"x","msg":"no level"}`, ""},
		{slog.LevelInfo, `{"level":40,"logger":"x","msg":"no marker"}`, ""},
	}
	got := c.all()
	if len(got) != len(wants) {
		t.Fatalf("%d records, want %d: %v", len(got), len(wants), got)
	}
	for i, w := range wants {
		e := got[i]
		if e.Level != w.level || e.Msg != w.msg {
			t.Errorf("record %d: %s %q, want %s %q", i, e.Level, e.Msg, w.level, w.msg)
		}
		if w.logger != "" {
			if l := e.values("logger"); !slices.Equal(l, []string{w.logger}) || e.values("stream") != nil {
				t.Errorf("record %d: logger %q stream %q, want logger %q only", i, l, e.values("stream"), w.logger)
			}
		} else if s := e.values("stream"); !slices.Equal(s, []string{"stderr"}) || e.values("logger") != nil {
			t.Errorf("record %d: stream %q logger %q, want stream=stderr only", i, s, e.values("logger"))
		}
	}
	if tb := got[4].values("traceback"); !slices.Equal(tb, []string{"Traceback (most recent call last):\n  boom\nValueError: x"}) {
		t.Errorf("traceback attribute %q", tb)
	}
	// The tail is for people: text lines, never JSON.
	wantTail := []string{"debug one", "info one", "custom level", "warning one", "two", "lines",
		"Traceback (most recent call last):", "  boom", "ValueError: x", "critical one", "plain C library line"}
	if kept := tail.last(); len(kept) < len(wantTail) || !slices.Equal(kept[:len(wantTail)], wantTail) {
		t.Errorf("tail %q, want it to begin with %q", kept, wantTail)
	}
}

// startWith starts a worker of bridge with extra environment, logging to log.
func startWith(t *testing.T, log *slog.Logger, bridge, dir string, env ...string) (*Worker, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := Start(ctx, Config{Python: testenv.Python(t), Bridge: bridge, Dir: dir, Env: env, Logger: log})
	if err == nil {
		t.Cleanup(func() { w.Kill("test over"); <-w.Done() })
	}
	return w, err
}

// Through a real worker: Python logging records arrive at their level with logger=<name>,
// their message as logged (no Python timestamp, level or prefix in it), and each attribute
// once; raw stderr lines still arrive, as stderr lines.
func TestWorkerLogRecords(t *testing.T) {
	c := newCapture()
	w, err := startWith(t, slog.New(c).With("bridge", "echo"), testenv.EchoBridge, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ level, logger, msg string }{
		{"warning", "httpx", "warned once"},
		{"error", "dspy", "failed once"},
		{"critical", "echo", "critical once"},
	} {
		if !callEcho[bool](t, w, "log_record", map[string]any{"level": r.level, "logger": r.logger, "msg": r.msg}) {
			t.Fatalf("%s not enabled", r.level)
		}
	}
	// Python's default level: INFO from a library is not written at all.
	if callEcho[bool](t, w, "log_record", map[string]any{"level": "info", "logger": "httpx", "msg": "chatty"}) {
		t.Error("INFO enabled for a library by default; want WARNING")
	}
	callEcho[bool](t, w, "log_record", map[string]any{"level": "error", "msg": "with exc", "exc": true})
	callEcho[int](t, w, "log_stderr", map[string]any{"prefix": "raw line"})

	pid := fmt.Sprint(w.Pid())
	for _, want := range []struct {
		msg, logger string
		level       slog.Level
	}{
		{"warned once", "httpx", slog.LevelWarn},
		{"failed once", "dspy", slog.LevelError},
		{"critical once", "echo", slog.LevelError},
		{"with exc", "echo", slog.LevelError},
	} {
		e := c.await(t, want.msg)
		if e.Level != want.level {
			t.Errorf("%q at %s, want %s", want.msg, e.Level, want.level)
		}
		for key, val := range map[string]string{"logger": want.logger, "bridge": "echo", "worker_pid": pid} {
			if got := e.values(key); !slices.Equal(got, []string{val}) {
				t.Errorf("%q: %s = %q, want %q once", want.msg, key, got, val)
			}
		}
	}
	if tb := c.await(t, "with exc").values("traceback"); len(tb) != 1 ||
		!strings.HasPrefix(tb[0], "Traceback (most recent call last):") || !strings.HasSuffix(tb[0], "ValueError: logged on purpose") {
		t.Errorf("traceback %q", tb)
	}
	raw := c.await(t, "raw line")
	if raw.Level != slog.LevelInfo || !slices.Equal(raw.values("stream"), []string{"stderr"}) || raw.values("logger") != nil {
		t.Errorf("raw line logged as %v", raw)
	}
	for _, e := range c.all() {
		if strings.Contains(e.Msg, "chatty") || strings.Contains(e.Msg, recordMarker) {
			t.Errorf("logged %v", e)
		}
	}
}

// MLBRIDGE_LOG_LEVEL lowers the worker's level: DEBUG records arrive, at Debug.
func TestWorkerLogLevelEnv(t *testing.T) {
	c := newCapture()
	w, err := startWith(t, slog.New(c), testenv.EchoBridge, "", "MLBRIDGE_LOG_LEVEL=debug")
	if err != nil {
		t.Fatal(err)
	}
	if !callEcho[bool](t, w, "log_record", map[string]any{"level": "debug", "logger": "httpx", "msg": "debug detail"}) {
		t.Fatal("DEBUG not enabled with MLBRIDGE_LOG_LEVEL=debug")
	}
	if e := c.await(t, "debug detail"); e.Level != slog.LevelDebug || !slices.Equal(e.values("logger"), []string{"httpx"}) {
		t.Errorf("logged as %v", e)
	}
}

// A bridge whose constructor raises: the traceback reaches the user exactly once, in the
// error Start returns, and neither in forwarded stderr nor in a "worker exited" record.
func TestStartFailureTracebackOnce(t *testing.T) {
	dir := t.TempDir()
	src := "from mlbridge_worker.base_bridge import BaseBridge\n\n\n" +
		"class Nope(BaseBridge):\n" +
		"    def __init__(self) -> None:\n" +
		"        raise RuntimeError(\"constructor says no\")\n\n" +
		"    def _initialize_framework(self) -> None:\n" +
		"        pass\n"
	if err := os.WriteFile(filepath.Join(dir, "failing_bridge.py"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newCapture()
	_, err := startWith(t, slog.New(c), "failing_bridge:Nope", dir)
	if err == nil {
		t.Fatal("Start succeeded")
	}
	var remote *errs.RemoteError
	if !errors.Is(err, errs.ErrHandshake) || !errors.As(err, &remote) || remote.Type != "RuntimeError" {
		t.Fatalf("err = %v, want ErrHandshake wrapping the RuntimeError", err)
	}
	// Everything the worker wrote has been read before Start returned (die waits for stderr
	// EOF); whatever reached the log is here now.
	var seen strings.Builder
	for _, e := range c.all() {
		seen.WriteString(e.String() + "\n")
	}
	seen.WriteString(err.Error())
	for _, s := range []string{"Traceback (most recent call last)", `raise RuntimeError("constructor says no")`} {
		if n := strings.Count(seen.String(), s); n != 1 {
			t.Errorf("%q appears %d times across the log and the error, want once:\n%s", s, n, seen.String())
		}
	}
}
