package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge/internal/errs"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// startEcho starts an echo worker as this process's child, logging to log.
func startEcho(t *testing.T, log *slog.Logger, zygote *Zygote) *Worker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := Start(ctx, Config{Python: testenv.Python(t), Bridge: testenv.EchoBridge, Logger: log, Zygote: zygote})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Kill("test over"); <-w.Done() })
	return w
}

// callEcho makes one call and decodes its result into T. The timeout only keeps a broken
// worker from hanging the test; nothing here measures time.
func callEcho[T any](t *testing.T, w *Worker, op string, args map[string]any) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := w.Send(ctx, op, args, false)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	raw, err := c.Result(ctx)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	var v T
	if err := msgpack.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: decoding %x: %v", op, raw, err)
	}
	return v
}

// A worker that writes a 2 MiB line to stderr must neither block on its next write nor stop
// its later lines from reaching the log: the line is logged cut to maxStderrLine with a
// marker, and the ExitError's stderr tail keeps that same cut form.
func TestWorkerStderrLongLine(t *testing.T) {
	rec := &records{}
	w := startEcho(t, slog.New(rec), nil)
	const long = 2 << 20

	callEcho[int](t, w, "log_stderr", map[string]any{"prefix": "before"})
	// With a stalled reader this call never returns: the pipe fills and the write blocks.
	if n := callEcho[int](t, w, "log_stderr", map[string]any{"prefix": "long:", "n": long}); n != long+1 {
		t.Fatalf("log_stderr wrote %d bytes, want %d", n, long+1)
	}
	for i := range 3 {
		callEcho[int](t, w, "log_stderr", map[string]any{"prefix": fmt.Sprintf("after %d", i)})
		if got := callEcho[int](t, w, "add", map[string]any{"a": i, "b": 1}); got != i+1 {
			t.Fatalf("add = %d", got)
		}
	}
	// The log is written by the stderr goroutine, after the call's answer: wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := rec.find("after 2"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("\"after 2\" never reached the log; got %s", brief(rec.messages()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, want := range []string{"before", "after 0", "after 1"} {
		if _, ok := rec.find(want); !ok {
			t.Errorf("%q missing from the log", want)
		}
	}
	got, ok := rec.find("long:")
	wantLine := "long:" + strings.Repeat("x", maxStderrLine-len("long:")) +
		fmt.Sprintf("…[truncated %d bytes]", long-maxStderrLine)
	if !ok || got != wantLine {
		t.Fatalf("long line logged as %s, want %s", brief([]string{got}), brief([]string{wantLine}))
	}

	// The worker's death report carries the same cut line.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c, err := w.Send(ctx, "exit", map[string]any{"code": 3}, false); err == nil {
		_, _ = c.Result(ctx) // fails: the worker is gone
	}
	<-w.Done()
	var exit *errs.ExitError
	if !errors.As(w.Err(), &exit) {
		t.Fatalf("Err() = %v, want an ExitError", w.Err())
	}
	if exit.ExitCode != 3 {
		t.Errorf("exit code %d, want 3", exit.ExitCode)
	}
	found := false
	for _, line := range exit.Stderr {
		found = found || line == wantLine
	}
	if !found {
		t.Errorf("ExitError stderr tail %s lacks the cut line", brief(exit.Stderr))
	}
}
