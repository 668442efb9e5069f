package mlbridge_test

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/internal/wire"
)

// The protocol's value limits (spec/protocol.md, "Values"): a value nested deeper than
// wire.MaxDepth, or too big for a frame, fails its own call with a typed error, costs
// little memory to refuse, and never takes the worker (or other calls) down with it.

// nested wraps leaf in n arrays.
func nested(n int, leaf any) any {
	v := leaf
	for range n {
		v = []any{v}
	}
	return v
}

// openLimits starts a worker of python/tests/limit_bridges.py's LimitBridge: EchoBridge plus
// handlers whose results break the limits.
func openLimits(t *testing.T, mutate ...func(*mlbridge.Config)) *mlbridge.Bridge {
	return open(t, append([]func(*mlbridge.Config){func(c *mlbridge.Config) {
		c.Bridge = "limit_bridges:LimitBridge"
		c.Env = append(c.Env, "PYTHONPATH="+filepath.Join(testenv.Root(), "python", "tests"))
	}}, mutate...)...)
}

func TestArgsTooDeepFailOnlyTheirCall(t *testing.T) {
	b := open(t)
	ctx := context.Background()
	// A call in flight while the bad ones are refused: it used to die with the worker.
	slow := b.Submit(ctx, "sleep_echo", args("value", "slow", "seconds", 0.3))
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	for name, a := range map[string]any{
		"one past":                    args("value", nested(wire.MaxDepth, 1)), // the args map is level 1
		"past msgpack-python's 1,024": args("value", nested(1100, 1)),
		"cyclic":                      cyclic,
	} {
		_, err := b.Call(ctx, "echo", a)
		if !errors.Is(err, mlbridge.ErrInvalidArgument) || !errors.Is(err, wire.ErrTooDeep) {
			t.Fatalf("%s: got %v, want ErrInvalidArgument (too deep)", name, err)
		}
		if !strings.Contains(err.Error(), "256") {
			t.Errorf("%s: the error does not name the limit: %v", name, err)
		}
	}
	if v, err := mlbridge.Decode[string](slow.Wait(ctx)); err != nil || v != "slow" {
		t.Fatalf("the call in flight: %q %v", v, err)
	}
	atLimit := nested(wire.MaxDepth-1, "leaf")
	got, err := b.Call(ctx, "echo", args("value", atLimit))
	if err != nil {
		t.Fatalf("args at the limit: %v", err)
	}
	if v, _ := got.Value(); !sameValue(v, atLimit) {
		t.Fatal("args at the limit did not round-trip")
	}
}

func TestResultTooDeepIsASerializationError(t *testing.T) {
	b := openLimits(t)
	ctx := context.Background()
	if _, err := b.Call(ctx, "nest", args("depth", wire.MaxDepth)); err != nil {
		t.Fatalf("a result at the limit: %v", err)
	}
	for _, op := range []string{"nest", "sync_nest"} {
		for _, depth := range []int{wire.MaxDepth + 1, 5000} {
			_, err := b.Call(ctx, op, args("depth", depth))
			var re *mlbridge.RemoteError
			if !errors.Is(err, mlbridge.ErrSerialization) || !errors.As(err, &re) || re.Type != "ValueTooDeep" {
				t.Fatalf("%s %d: got %v, want a ValueTooDeep serialization error", op, depth, err)
			}
		}
	}
	if _, err := b.Call(ctx, "cyclic", nil); !errors.Is(err, mlbridge.ErrSerialization) {
		t.Fatalf("cyclic result: %v", err)
	}
	n := 0
	for _, err := range b.Stream(ctx, "nest_stream", args("depth", wire.MaxDepth+1)) {
		if err != nil {
			if !errors.Is(err, mlbridge.ErrSerialization) || n != 1 {
				t.Fatalf("after %d items: %v", n, err)
			}
			break
		}
		n++
	}
	if v := call[int](t, b, "add", args("a", 1, "b", 2)); v != 3 {
		t.Fatal(v)
	}
}

// deepWorker is a worker that breaks the depth limit itself: for op "deep" it answers a
// result nested 100,000 levels, written before the id (so only a decoder that skips the
// value whole, whatever its depth, can still tell which call it belongs to).
const deepWorker = stubFraming + `
read()
write(msgpack.packb({"t": "hello", "version": 1, "pid": os.getpid(),
    "framework": {"name": "deep", "version": "0"}, "capabilities": [], "handlers": {"deep": "async", "fine": "async"}}))
while True:
    m = read()
    if m.get("t") != "req":
        continue
    if m["op"] == "deep":
        write(b"\x84\xa1t\xa3res\xa2ok\xc3\xa6result" + b"\x91" * 100000 + b"\xc0\xa2id" + msgpack.packb(m["id"]))
    else:
        write(msgpack.packb({"t": "res", "id": m["id"], "ok": True, "result": "fine"}))
`

func TestResultTooDeepFromWorkerFailsOnlyThatCall(t *testing.T) {
	b := open(t, func(c *mlbridge.Config) {
		c.Args = []string{"-c", deepWorker}
		c.Python = testenv.Python(t)
	})
	_, err := b.Call(context.Background(), "deep", nil)
	if !errors.Is(err, mlbridge.ErrSerialization) || !errors.Is(err, mlbridge.ErrProtocol) {
		t.Fatalf("got %v, want ErrSerialization and ErrProtocol", err)
	}
	if v := call[string](t, b, "fine", nil); v != "fine" {
		t.Fatalf("next call on the same worker: %q", v)
	}
	select {
	case <-b.Done():
		t.Fatalf("the worker died: %v", b.Err())
	default:
	}
}

// TestOversizedArgRefusalCostsLittleMemory: refusing a 256 MiB argument with the default
// 64 MiB frame limit used to cost a whole encoded frame (+256 MiB) before the size check.
func TestOversizedArgRefusalCostsLittleMemory(t *testing.T) {
	b := open(t)
	blob := make([]byte, 256<<20)
	a := args("value", blob)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := b.Call(context.Background(), "echo", a)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, mlbridge.ErrInvalidArgument) || !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("got %v, want ErrInvalidArgument (frame too large)", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Fatalf("refusing a 256 MiB argument allocated %d MiB", alloc>>20)
	}
	runtime.KeepAlive(blob)
	if v := call[int](t, b, "add", args("a", 1, "b", 2)); v != 3 {
		t.Fatal(v)
	}
}

func TestResultOverMaxFrameFailsOnlyThatCall(t *testing.T) {
	b := openLimits(t, func(c *mlbridge.Config) { c.MaxFrame = 1 << 20 })
	ctx := context.Background()
	for op, a := range map[string]map[string]any{
		"big":    args("n", 3<<20),
		"floats": args("n", 400_000),           // 3.6 MB of float64
		"shared": args("n", 1<<20, "times", 3), // 1 MiB in Python's memory, 3 MiB on the wire
	} {
		_, err := b.Call(ctx, op, a)
		var re *mlbridge.RemoteError
		if !errors.Is(err, mlbridge.ErrSerialization) || !errors.As(err, &re) || re.Type != "FrameTooLarge" {
			t.Fatalf("%s: got %v, want a FrameTooLarge serialization error", op, err)
		}
	}
	if got := call[[]byte](t, b, "big", args("n", 900_000)); len(got) != 900_000 {
		t.Fatalf("a result under the limit: %d bytes", len(got))
	}
	if v := call[int](t, b, "add", args("a", 1, "b", 2)); v != 3 {
		t.Fatal(v)
	}
}

func TestExceptionWithoutTextHasAMessage(t *testing.T) {
	b := openLimits(t)
	for _, typ := range []string{"ValueError", "RuntimeError", "KeyError"} {
		_, err := b.Call(context.Background(), "fail_empty", args("type", typ))
		var re *mlbridge.RemoteError
		if !errors.As(err, &re) || re.Message != typ {
			t.Fatalf("%s: got %#v", typ, err)
		}
	}
	re := &mlbridge.RemoteError{Op: "x", Category: "internal", Type: "ValueError"}
	if s := re.Error(); strings.HasSuffix(strings.TrimSpace(s), ":") {
		t.Fatalf("RemoteError without a message: %q", s)
	}
}

func TestDepthAndSizeRefusalsDoNotRestartWorkers(t *testing.T) {
	b := open(t)
	pid := b.Info().Pid
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 20 {
		if _, err := b.Call(ctx, "echo", args("value", nested(2000, 1))); !errors.Is(err, mlbridge.ErrInvalidArgument) {
			t.Fatal(err)
		}
	}
	if v := call[int](t, b, "pid", nil); v != pid {
		t.Fatalf("worker pid %d, was %d", v, pid)
	}
}
