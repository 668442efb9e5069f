package mlbridge_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mlbridge/mlbridge"
)

// The worker checks arguments against the handler's annotations before it runs (python/
// mlbridge_worker/argcheck.py): a wrong type is ErrInvalidArgument naming the argument, the
// expected and the given type, for unary calls and streams alike.
func TestArgumentTypesAreChecked(t *testing.T) {
	b := open(t)
	ctx := context.Background()
	refused := func(t *testing.T, err error, message string) {
		t.Helper()
		var re *mlbridge.RemoteError
		if !errors.Is(err, mlbridge.ErrInvalidArgument) || !errors.As(err, &re) {
			t.Fatalf("got %v, want an invalid_argument RemoteError", err)
		}
		if re.Type != "InvalidArgument" || re.Message != message || re.Traceback != "" {
			t.Fatalf("remote error %+v, want message %q and no traceback", re, message)
		}
	}
	cases := []struct {
		name, op string
		args     map[string]any
		message  string
	}{
		{"sync handler", "add", args("a", "1", "b", 2), "argument 'a': expected int, got str"},
		{"a bool is not an int", "add", args("a", 1, "b", true), "argument 'b': expected int, got bool"},
		{"async handler", "sleep_echo", args("value", 1, "seconds", "soon"), "argument 'seconds': expected float, got str"},
		{"list element", "getenv", args("names", []any{"HOME", 7}), "argument 'names' at [1]: expected str, got int"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := b.Call(ctx, c.op, c.args)
			refused(t, err, c.message)
		})
	}
	t.Run("stream", func(t *testing.T) {
		var err error
		for _, err = range b.Stream(ctx, "count", args("n", "3")) {
			if err != nil {
				break
			}
		}
		refused(t, err, "argument 'n': expected int, got str")
	})
	t.Run("an int for a float", func(t *testing.T) {
		if v := call[string](t, b, "sleep_echo", args("value", "ok", "seconds", 0)); v != "ok" {
			t.Fatalf("sleep_echo = %q", v)
		}
	})
}
