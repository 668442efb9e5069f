package mlbridge_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/mlbridge/mlbridge"
)

// lockedBuffer is a log sink safe for the pool's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// An op name that is not valid UTF-8 (serve's /v1/call/%ff) is the caller's bad input: the
// host refuses it with ErrInvalidArgument before it reaches a worker, whose protocol requires
// UTF-8 envelope strings. Sent, it came back as ErrProtocol and a Warn record that the call
// was lost with its worker, which had done nothing wrong.
func TestOpNotUTF8IsInvalidArgument(t *testing.T) {
	var logs lockedBuffer
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	b := open(t)
	ctx := context.Background()
	check := func(how string, err error) {
		t.Helper()
		if !errors.Is(err, mlbridge.ErrInvalidArgument) || errors.Is(err, mlbridge.ErrProtocol) {
			t.Errorf("%s: got %v, want ErrInvalidArgument (not ErrProtocol)", how, err)
		}
	}
	bad := "summarize\xff"
	_, err := p.Call(ctx, bad, nil)
	check("pool call", err)
	for _, err := range p.Stream(ctx, bad, nil) {
		check("pool stream", err)
	}
	_, err = p.Submit(ctx, bad, nil).Wait(ctx)
	check("pool submit", err)
	_, err = b.Call(ctx, bad, nil)
	check("bridge call", err)
	poolCall[any](t, p, "noop", nil)
	if s := logs.String(); strings.Contains(s, "call lost with its worker") || strings.Contains(s, "bad request") {
		t.Errorf("a caller's bad op logged as the worker's failure:\n%s", s)
	}
}
