package mlbridge_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge"
)

// panicky is a user type whose msgpack encoder panics (a nil field it did not expect, say).
type panicky struct{ Inner *struct{ N int } }

func (p panicky) EncodeMsgpack(enc *msgpack.Encoder) error { return enc.EncodeInt(int64(p.Inner.N)) }

// A user value whose encoder panics fails its own call instead of ending the process: in
// arguments given to Submit (encoded on the pool's goroutine, where the caller cannot recover
// the panic) or Call, and in a host function's result (encoded on the host call's goroutine).
func TestEncoderPanicFailsOnlyItsCall(t *testing.T) {
	ret := mlbridge.Func("ret", func(ctx context.Context, in struct{}) (any, error) { return panicky{}, nil })
	p := hostPool(t, ret)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	_, err := p.Submit(ctx, "echo", args("value", panicky{})).Wait(ctx)
	if !errors.Is(err, mlbridge.ErrInvalidArgument) || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("Submit: %v, want ErrInvalidArgument saying the encoding panicked", err)
	}
	if _, err := p.Call(ctx, "echo", args("value", panicky{})); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("Call: %v, want ErrInvalidArgument", err)
	}
	got := poolCall[map[string]any](t, p, "host_call_catch", args("fn", "ret"))
	if got["category"] != "serialization" || !contains(got["message"], "panicked") {
		t.Fatalf("Python saw %v, want a serialization error saying the encoding panicked", got)
	}
	if got := poolCall[string](t, p, "echo", args("value", "still here")); got != "still here" {
		t.Fatalf("after the panics: %q", got)
	}
}
