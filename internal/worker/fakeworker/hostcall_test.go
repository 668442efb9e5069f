package fakeworker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge/internal/errs"
	"github.com/mlbridge/mlbridge/internal/wire"
	"github.com/mlbridge/mlbridge/internal/worker"
	"github.com/mlbridge/mlbridge/internal/worker/fakeworker"
)

type funcs struct{}

func (funcs) CallHost(ctx context.Context, name string, args msgpack.RawMessage) (any, error) {
	if name == "double" {
		var in struct{ N int }
		if err := msgpack.Unmarshal(args, &in); err != nil {
			return nil, fmt.Errorf("%w: %w", errs.ErrInvalidArgument, err)
		}
		return 2 * in.N, nil
	}
	return nil, fmt.Errorf("%w: %q", errs.ErrNotFound, name)
}

func (funcs) Announce() msgpack.RawMessage { return nil }

// Host calls over the in-memory fake: ids apart from request ids (the fake reuses the request's
// id for its call), an unknown name, and an hcall that breaks the schema, which is answered
// with a protocol error and fails no request.
func TestHostCallsOverFake(t *testing.T) {
	cfg := config(&fakeworker.Launcher{})
	cfg.HostFuncs = funcs{}
	w, err := worker.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Shutdown(context.Background()) })
	hcall := func(fn any, args any) map[string]any {
		t.Helper()
		raw, err := call(t, w, context.Background(), "hcall", map[string]any{"fn": fn, "args": args})
		if err != nil {
			t.Fatal(err)
		}
		v, err := wire.DecodeValue(raw)
		if err != nil {
			t.Fatal(err)
		}
		return v.(map[string]any)
	}
	if got := hcall("double", map[string]any{"N": 21}); got["ok"] != true || fmt.Sprint(got["result"]) != "42" {
		t.Fatalf("double: %v", got)
	}
	if got := hcall("nope", nil); got["ok"] != false || got["category"] != "not_found" || got["type"] != "HostError" {
		t.Fatalf("unknown name: %v", got)
	}
	if got := hcall(5, nil); got["ok"] != false || got["category"] != "protocol" || !strings.Contains(fmt.Sprint(got["message"]), "fn") {
		t.Fatalf("a bad hcall: %v", got)
	}
	if got := hcall("double", map[string]any{"N": "x"}); got["category"] != "invalid_argument" {
		t.Fatalf("bad args: %v", got)
	}
	if _, err := call(t, w, context.Background(), "echo", map[string]any{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.Err(); err != nil && !errors.Is(err, errs.ErrClosed) {
		t.Fatal(err)
	}
}
