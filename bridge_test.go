package mlbridge_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/mlbridge/mlbridge"
)

func TestHandshakeInfo(t *testing.T) {
	b := open(t)
	info := b.Info()
	if info.Pid <= 0 || info.ProtocolVersion != 1 {
		t.Fatalf("info %+v", info)
	}
	want := map[string]mlbridge.HandlerKind{
		"noop": mlbridge.KindAsync, "sync_echo": mlbridge.KindSync,
		"count": mlbridge.KindAsyncGen, "sync_count": mlbridge.KindSyncGen, "ping": "",
	}
	for op, kind := range want {
		got, ok := info.Handlers[op]
		if !ok || (kind != "" && got != kind) {
			t.Errorf("handler %s: got %q (present %v), want %q", op, got, ok, kind)
		}
	}
}

func TestEchoEveryType(t *testing.T) {
	b := open(t)
	values := []any{
		nil, true, false,
		int64(0), int64(-1), int64(math.MinInt64), int64(math.MaxInt64), uint64(math.MaxUint64),
		1.5, math.Inf(1), float32(0.25),
		"", "héllo wörld ✓", strings.Repeat("x", 100_000),
		[]byte{}, []byte{0, 1, 2, 255},
		[]any{}, []any{int64(1), "two", []any{3.0}},
		map[string]any{}, map[string]any{"nested": map[string]any{"k": []byte("v")}},
	}
	for _, op := range []string{"echo", "sync_echo"} {
		for _, v := range values {
			res, err := b.Call(context.Background(), op, args("value", v))
			if err != nil {
				t.Fatalf("%s(%T): %v", op, v, err)
			}
			got, err := res.Value()
			if err != nil {
				t.Fatal(err)
			}
			if !sameValue(got, v) {
				t.Errorf("%s: sent %#v (%T), got back %#v (%T)", op, v, v, got, got)
			}
		}
	}
}

// A Python dict with keys that are not strings: Value reads it as a map[any]any (it was
// msgpack's bare "invalid code" error), and Decode into a fitting map reads it too.
func TestValueOfAMapWithIntKeys(t *testing.T) {
	b := open(t)
	res, err := b.Call(context.Background(), "echo", args("value", map[int]string{1: "a", 2: "b"}))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := res.Value(); err != nil || len(v.(map[any]any)) != 2 {
		t.Fatalf("Value = %#v, %v; want a map[any]any of 2 (TestResultWithNonStringKeys checks its content)", v, err)
	}
	var m map[int]string
	if err := res.Decode(&m); err != nil || m[1] != "a" || m[2] != "b" {
		t.Fatalf("Decode = %v, %v", m, err)
	}
}

// A result that does not fit the type it is decoded into is ErrSerialization naming that type
// (it was msgpack's bare error, which matched no sentinel): a string into an int, a list into an
// Array, a map into a list.
func TestDecodeIntoTheWrongTypeIsTyped(t *testing.T) {
	b := open(t)
	check := func(what string, err error, typ string) {
		t.Helper()
		if !errors.Is(err, mlbridge.ErrSerialization) || !strings.Contains(err.Error(), typ) {
			t.Errorf("%s: %v, want ErrSerialization naming %s", what, err, typ)
		}
	}
	_, err := mlbridge.Decode[int](b.Call(context.Background(), "echo", args("value", "seven")))
	check("string into int", err, "*int")
	_, err = mlbridge.Decode[mlbridge.Array](b.Call(context.Background(), "echo", args("value", []int{1, 2})))
	check("list into Array", err, "*mlbridge.Array")
	_, err = mlbridge.Decode[[]string](b.Call(context.Background(), "echo", args("value", map[string]int{"a": 1})))
	check("map into []string", err, "*[]string")
	if v, err := mlbridge.Decode[[]int](b.Call(context.Background(), "echo", args("value", []int{1, 2}))); err != nil || len(v) != 2 {
		t.Fatalf("a fitting decode: %v %v", v, err)
	}
}

// sameValue compares a sent value with what came back, allowing msgpack's integer and
// float widths to differ from the Go type sent.
func sameValue(got, want any) bool {
	switch w := want.(type) {
	case int64, uint64:
		return fmt.Sprint(got) == fmt.Sprint(w)
	case float32:
		g, ok := got.(float64)
		return ok && g == float64(w) || fmt.Sprint(got) == fmt.Sprint(w)
	case []byte:
		g, ok := got.([]byte)
		return ok && bytes.Equal(g, w)
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !sameValue(g[i], w[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k := range w {
			if !sameValue(g[k], w[k]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(got, want)
}

func TestStructArgsAndTypedResult(t *testing.T) {
	b := open(t)
	type addArgs struct {
		A int `json:"a"`
		B int `json:"b"`
	}
	sum, err := mlbridge.Decode[int](b.Call(context.Background(), "add", addArgs{A: 40, B: 2}))
	if err != nil || sum != 42 {
		t.Fatalf("add = %d, %v", sum, err)
	}
}

func TestRemoteErrors(t *testing.T) {
	b := open(t)
	ctx := context.Background()
	cases := []struct {
		name     string
		op       string
		args     any
		sentinel error
		category string
		pyType   string
	}{
		{"unknown op", "no_such_op", nil, mlbridge.ErrUnknownOp, "unknown_op", ""},
		{"missing argument", "add", args("a", 1), mlbridge.ErrInvalidArgument, "invalid_argument", "TypeError"},
		{"unexpected argument", "add", args("a", 1, "b", 2, "c", 3), mlbridge.ErrInvalidArgument, "invalid_argument", "TypeError"},
		{"wrong argument type", "add", args("a", "1", "b", 2), mlbridge.ErrInvalidArgument, "invalid_argument", ""},
		{"handler exception", "fail", args("type", "ValueError", "message", "bad value"), mlbridge.ErrInternal, "internal", "ValueError"},
		{"TypeError inside handler is not an argument error", "fail", args("type", "TypeError"), mlbridge.ErrInternal, "internal", "TypeError"},
		{"categorised exception", "fail", args("type", "NotFound", "message", "no program"), mlbridge.ErrNotFound, "not_found", "NotFound"},
		{"unserializable result", "unserializable", nil, mlbridge.ErrSerialization, "serialization", ""},
		{"unary call of a generator", "count", args("n", 2), mlbridge.ErrInvalidArgument, "invalid_argument", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := b.Call(ctx, c.op, c.args)
			if !errors.Is(err, c.sentinel) {
				t.Fatalf("got %v, want %v", err, c.sentinel)
			}
			var re *mlbridge.RemoteError
			if !errors.As(err, &re) {
				t.Fatalf("%v is not a *RemoteError", err)
			}
			if re.Category != c.category || re.Op != c.op || (c.pyType != "" && re.Type != c.pyType) {
				t.Fatalf("remote error %+v", re)
			}
			if c.category == "internal" && !strings.Contains(re.Traceback, "Traceback") {
				t.Fatalf("no traceback in %+v", re)
			}
		})
	}
	// The worker survived all of it.
	if v := call[int](t, b, "add", args("a", 1, "b", 1)); v != 2 {
		t.Fatalf("worker broken after errors: %d", v)
	}
}

func TestArgsMustBeAMap(t *testing.T) {
	b := open(t)
	_, err := b.Call(context.Background(), "echo", []int{1, 2})
	if !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("got %v", err)
	}
}

func TestPrintToStdoutDoesNotCorruptProtocol(t *testing.T) {
	b := open(t)
	for i := range 3 {
		if got := call[string](t, b, "print_stdout", args("text", fmt.Sprintf("noise %d\n\x00\x00\x00\x05garbage", i))); got != "ok" {
			t.Fatalf("print_stdout = %q", got)
		}
	}
	if v := call[int](t, b, "add", args("a", 2, "b", 3)); v != 5 {
		t.Fatalf("after prints: %d", v)
	}
}

func TestManyConcurrentCallsOutOfOrder(t *testing.T) {
	b := open(t)
	ctx := context.Background()
	slow := b.Submit(ctx, "sleep", args("seconds", 0.5))
	// A fast call sent after the slow one completes first: responses are multiplexed.
	if v := call[string](t, b, "echo", args("value", "fast")); v != "fast" {
		t.Fatal(v)
	}
	select {
	case <-slow.Done():
		t.Fatal("slow call finished before the fast one")
	default:
	}
	var wg sync.WaitGroup
	errs := make(chan error, 500)
	for i := range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			op := "echo"
			if i%2 == 1 {
				op = "sync_echo"
			}
			v, err := mlbridge.Decode[int](b.Call(ctx, op, args("value", i)))
			if err == nil && v != i {
				err = fmt.Errorf("call %d got %d", i, v)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, err := slow.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestLargeFrames(t *testing.T) {
	b := open(t, func(c *mlbridge.Config) { c.MaxFrame = 1 << 20 })
	got := call[[]byte](t, b, "big", args("n", 512<<10))
	if len(got) != 512<<10 {
		t.Fatalf("got %d bytes", len(got))
	}
	// A result over the limit is a clear error, and the worker lives on.
	_, err := b.Call(context.Background(), "big", args("n", 2<<20))
	if !errors.Is(err, mlbridge.ErrSerialization) {
		t.Fatalf("oversized result: %v", err)
	}
	// Arguments over the limit are refused before they are sent.
	_, err = b.Call(context.Background(), "echo", args("value", make([]byte, 2<<20)))
	if !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("oversized args: %v", err)
	}
	if v := call[int](t, b, "add", args("a", 1, "b", 2)); v != 3 {
		t.Fatal(v)
	}
}

func TestEnvironmentIsControlled(t *testing.T) {
	t.Setenv("MLBRIDGE_TEST_SECRET_TOKEN", "") // make sure the prefix rule is not what hides it
	t.Setenv("SUPER_SECRET_API_KEY", "hunter2")
	t.Setenv("ALLOWED_VAR", "visible")
	b := open(t, func(c *mlbridge.Config) {
		c.EnvAllow = []string{"ALLOWED_*"}
		c.Env = []string{"EXTRA=1"}
	})
	env := call[map[string]string](t, b, "getenv", args("names", []string{"SUPER_SECRET_API_KEY", "ALLOWED_VAR", "EXTRA", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}))
	want := map[string]string{"ALLOWED_VAR": "visible", "EXTRA": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
	if !reflect.DeepEqual(env, want) {
		t.Fatalf("worker env %v, want %v", env, want)
	}
}

func TestOverloaded(t *testing.T) {
	b := open(t, func(c *mlbridge.Config) { c.MaxInFlight = 2 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f1 := b.Submit(ctx, "sleep", args("seconds", 30))
	f2 := b.Submit(ctx, "sleep", args("seconds", 30))
	_, err := b.Call(ctx, "noop", nil)
	if !errors.Is(err, mlbridge.ErrOverloaded) {
		t.Fatalf("third call: %v", err)
	}
	cancel()
	for _, f := range []*mlbridge.Future{f1, f2} {
		if _, err := f.Wait(context.Background()); !errors.Is(err, mlbridge.ErrCancelled) {
			t.Fatalf("cancelled call: %v", err)
		}
	}
	if _, err := b.Call(context.Background(), "noop", nil); err != nil {
		t.Fatalf("after the load went: %v", err)
	}
}
