package mlbridge_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// quietLogger keeps worker stderr out of test output unless -v.
func quietLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}

// open starts an EchoBridge worker for the test and closes it when the test ends.
func open(t testing.TB, mutate ...func(*mlbridge.Config)) *mlbridge.Bridge {
	t.Helper()
	cfg := mlbridge.Config{Bridge: testenv.EchoBridge, Python: testenv.Python(t), Logger: quietLogger(t)}
	for _, m := range mutate {
		m(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := mlbridge.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func call[T any](t testing.TB, b *mlbridge.Bridge, op string, args any) T {
	t.Helper()
	v, err := mlbridge.Decode[T](b.Call(context.Background(), op, args))
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return v
}

// waitForToken polls the worker until a handler recorded that it was stopped. Polling is
// bounded by the test's own timeout: it asserts an outcome, not a duration.
func waitForToken(t testing.TB, b *mlbridge.Bridge, token string) {
	t.Helper()
	for {
		if slices.Contains(call[[]string](t, b, "cancelled_tokens", nil), token) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func args(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}
