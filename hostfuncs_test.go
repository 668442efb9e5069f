package mlbridge_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mlbridge/mlbridge"
)

type weatherIn struct {
	City  string `json:"city" desc:"the city's name"`
	Units string `json:"units,omitempty"`
	I     int    `json:"i,omitempty"`
}

type weatherOut struct {
	City  string  `json:"city"`
	TempC float64 `json:"temp_c"`
	I     int     `json:"i"`
}

// hostPool is a one-worker pool (so nested calls meet the same worker) with funcs registered.
func hostPool(t *testing.T, funcs ...mlbridge.HostFunc) *mlbridge.Pool {
	t.Helper()
	return openPool(t, func(c *mlbridge.PoolConfig) { c.Size = 1; c.HostFuncs = funcs })
}

func weatherFunc(seen chan<- context.Context) mlbridge.HostFunc {
	return mlbridge.Func("weather", func(ctx context.Context, in weatherIn) (weatherOut, error) {
		if seen != nil {
			seen <- ctx
		}
		if in.City == "Atlantis" {
			return weatherOut{}, fmt.Errorf("%w: no city named %q", mlbridge.ErrNotFound, in.City)
		}
		return weatherOut{City: in.City, TempC: 21.5, I: in.I}, nil
	}, mlbridge.Describe("Weather in a city"))
}

func TestHostFuncFromAsyncAndSyncHandlers(t *testing.T) {
	seen := make(chan context.Context, 3)
	p := hostPool(t, weatherFunc(seen))
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	for _, op := range []string{"host_call", "host_call_sync", "host_call_request"} {
		t.Run(op, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(trace.ContextWithSpanContext(context.Background(), sc), time.Minute)
			defer cancel()
			want, _ := ctx.Deadline()
			got, err := mlbridge.Decode[weatherOut](p.Call(ctx, op, args("fn", "weather", "args", args("city", "Paris"))))
			if err != nil {
				t.Fatal(err)
			}
			if got != (weatherOut{City: "Paris", TempC: 21.5}) {
				t.Fatalf("got %+v", got)
			}
			fctx := <-seen
			if d, ok := fctx.Deadline(); !ok || !d.Equal(want) {
				t.Errorf("the Go function's deadline is %v (%v), want the call's %v", d, ok, want)
			}
			if got := trace.SpanContextFromContext(fctx); !got.Equal(sc) {
				t.Errorf("the Go function's span is %v, want the call's %v", got, sc)
			}
			if d := mlbridge.CallbackDepth(fctx); d != 1 {
				t.Errorf("depth %d, want 1", d)
			}
		})
	}
}

// A host function runs in the span of the handler that called it: the request's handler span,
// a child of the pool's client span.
func TestHostFuncSpanIsTheCallsHandlerSpan(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	seen := make(chan context.Context, 1)
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size = 1
		c.HostFuncs = []mlbridge.HostFunc{weatherFunc(seen)}
		c.TracerProvider = tp
	})
	if _, err := p.Call(context.Background(), "host_call", args("fn", "weather", "args", args("city", "Oslo"))); err != nil {
		t.Fatal(err)
	}
	span := trace.SpanFromContext(<-seen)
	ro, ok := span.(sdktrace.ReadOnlySpan)
	if !ok || ro.Name() != "host_call" || ro.SpanKind() != trace.SpanKindServer {
		t.Fatalf("the Go function's ctx carries %T %v, want the call's handler span", span, span)
	}
	var client trace.SpanContext
	for _, s := range exp.GetSpans() {
		if s.Name == "host_call" && s.SpanKind == trace.SpanKindClient {
			client = s.SpanContext
		}
	}
	if !client.IsValid() || ro.Parent().SpanID() != client.SpanID() || ro.SpanContext().TraceID() != client.TraceID() {
		t.Errorf("handler span's parent %v, want the pool's client span %v", ro.Parent(), client)
	}
	t.Logf("host function ctx span: %q (%s)", ro.Name(), ro.SpanKind())
}

func TestHostFuncAnnounced(t *testing.T) {
	p := hostPool(t, weatherFunc(nil))
	got := poolCall[map[string]map[string]any](t, p, "host_funcs", nil)
	w := got["weather"]
	if w["description"] != "Weather in a city" {
		t.Fatalf("announced %v", got)
	}
	schema := w["schema"].(map[string]any)
	props := schema["properties"].(map[string]any)
	if props["city"].(map[string]any)["type"] != "string" || props["city"].(map[string]any)["description"] != "the city's name" ||
		!slices.Equal(schema["required"].([]any), []any{"city"}) {
		t.Fatalf("schema %v", schema)
	}
}

func TestHostFuncErrorsAreTypedBothWays(t *testing.T) {
	var p *mlbridge.Pool
	relay := mlbridge.Func("relay", func(ctx context.Context, in struct {
		Type string `json:"type"`
	}) (any, error) {
		// a Python exception raised through Go keeps its category and class
		_, err := p.Call(ctx, "fail", args("type", in.Type, "message", "from python"))
		return nil, err
	})
	p = hostPool(t, weatherFunc(nil), relay)
	catch := func(fn string, a map[string]any) map[string]any {
		return poolCall[map[string]any](t, p, "host_call_catch", args("fn", fn, "args", a))
	}
	cases := []struct {
		name, fn                        string
		args                            map[string]any
		class, category, typ, inMessage string
	}{
		{"go sentinel", "weather", args("city", "Atlantis"), "NotFound", "not_found", "HostError", "no city named"},
		{"unknown name", "nope", nil, "NotFound", "not_found", "HostError", `no host function named "nope"`},
		{"wrong type", "weather", args("city", 5), "InvalidArgument", "invalid_argument", "HostError", "takes (city: string, i?: integer, units?: string)"},
		{"unknown argument", "weather", args("town", "x"), "InvalidArgument", "invalid_argument", "HostError", "town"},
		{"missing argument", "weather", args("units", "C"), "InvalidArgument", "invalid_argument", "HostError", "missing city"},
		{"no arguments", "weather", nil, "InvalidArgument", "invalid_argument", "HostError", "missing city"},
		{"python through go", "relay", args("type", "RateLimit"), "RateLimit", "rate_limit", "RateLimit", "from python"},
		{"python builtin through go", "relay", args("type", "KeyError"), "HostCallError", "internal", "KeyError", "from python"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := catch(c.fn, c.args)
			if got["class"] != c.class || got["category"] != c.category || got["type"] != c.typ || !contains(got["message"], c.inMessage) {
				t.Fatalf("Python saw %v, want %s/%s/%s with %q", got, c.class, c.category, c.typ, c.inMessage)
			}
		})
	}
	// uncaught in Python: back in Go with the category of the Go error
	_, err := p.Call(context.Background(), "host_call", args("fn", "weather", "args", args("city", "Atlantis")))
	var re *mlbridge.RemoteError
	if !errors.Is(err, mlbridge.ErrNotFound) || !errors.As(err, &re) || re.Type != "HostError" {
		t.Fatalf("got %v", err)
	}
	_, err = p.Call(context.Background(), "host_call_sync", args("fn", "weather", "args", args("city", 5)))
	if !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("got %v", err)
	}
	t.Logf("uncaught: %v", err)
}

// A host function that panics fails its call (ErrInternal, saying where it panicked), from
// both handler kinds and through Invoke; the host process and its pool go on. Before, the
// panic ended the whole test binary.
func TestHostFuncPanicIsTheCallsError(t *testing.T) {
	boom := mlbridge.Func("boom", func(ctx context.Context, in struct{}) (int, error) {
		var m map[string]int
		m["x"] = 1 // a nil-map write: the kind of bug a host function ships with
		return 0, nil
	})
	p := hostPool(t, boom)
	got := poolCall[map[string]any](t, p, "host_call_catch", args("fn", "boom"))
	if got["class"] != "HostCallError" || got["category"] != "internal" ||
		!contains(got["message"], `host function "boom" panicked: assignment to entry in nil map`) ||
		!contains(got["message"], "hostfuncs_test.go:") {
		t.Fatalf("Python saw %v", got)
	}
	for _, op := range []string{"host_call", "host_call_sync"} {
		if _, err := p.Call(context.Background(), op, args("fn", "boom")); !errors.Is(err, mlbridge.ErrInternal) {
			t.Fatalf("%s: got %v, want ErrInternal", op, err)
		}
	}
	if _, err := boom.Invoke(context.Background(), nil); !errors.Is(err, mlbridge.ErrInternal) {
		t.Fatalf("Invoke: got %v, want ErrInternal", err)
	}
	if got := poolCall[string](t, p, "echo", args("value", "still here")); got != "still here" {
		t.Fatalf("after the panics: %q", got)
	}
}

// numpy values in a host call's arguments travel as they do in a result: an array as an
// mlbridge.Array, a scalar as a number. They were refused ("can not serialize
// 'numpy.ndarray' object").
func TestHostFuncNumpyArguments(t *testing.T) {
	type numpyIn struct {
		A    mlbridge.Array   `json:"a"`
		N    int              `json:"n"`
		More []mlbridge.Array `json:"more"`
	}
	f := mlbridge.Func("weigh", func(ctx context.Context, in numpyIn) (float64, error) {
		a, err := in.A.Float64s()
		if err != nil || len(in.More) != 1 {
			return 0, fmt.Errorf("%w: a %v (%v), more %v", mlbridge.ErrInvalidArgument, a, err, in.More)
		}
		m, err := in.More[0].Int32s()
		if err != nil {
			return 0, err
		}
		return float64(in.N)*(a[0]+a[1]+a[2]) + float64(m[0]+m[1]), nil
	})
	p := hostPool(t, f)
	res, err := p.Call(context.Background(), "host_call_numpy", args("fn", "weigh"))
	if err != nil && strings.Contains(err.Error(), "No module named 'numpy'") {
		t.Skip("numpy is not installed for this interpreter")
	}
	var got float64
	if err == nil {
		err = res.Decode(&got)
	}
	if err != nil || got != 2*(0+1+2)+2 {
		t.Fatalf("host_call_numpy = %v, %v; want 8", got, err)
	}
}

func contains(v any, sub string) bool {
	s, _ := v.(string)
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestHostFuncCancelStopsBothSides(t *testing.T) {
	started := make(chan struct{}, 1)
	ended := make(chan error, 1)
	block := mlbridge.Func("block", func(ctx context.Context, _ struct{}) (bool, error) {
		started <- struct{}{}
		<-ctx.Done()
		ended <- ctx.Err()
		return false, ctx.Err()
	})
	p := hostPool(t, block)
	for _, op := range []string{"host_call", "host_call_sync"} {
		t.Run(op, func(t *testing.T) {
			token := "cancel-" + op
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() {
				_, err := p.Call(ctx, op, args("fn", "block", "token", token))
				errc <- err
			}()
			<-started
			cancel()
			if err := <-errc; !errors.Is(err, mlbridge.ErrCancelled) {
				t.Fatalf("call: %v", err)
			}
			if err := <-ended; !errors.Is(err, context.Canceled) {
				t.Fatalf("the Go function's ctx ended with %v", err)
			}
			waitForPoolToken(t, p, "hcall_cancelled:"+token)
			if got := poolCall[string](t, p, "echo", args("value", "still here")); got != "still here" {
				t.Fatal(got)
			}
		})
	}
}

func waitForPoolToken(t *testing.T, p *mlbridge.Pool, token string) {
	t.Helper()
	for !slices.Contains(poolCall[[]string](t, p, "cancelled_tokens", nil), token) {
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHostFuncTimeoutReachesTheGoFunction(t *testing.T) {
	ended := make(chan error, 1)
	block := mlbridge.Func("block", func(ctx context.Context, _ struct{}) (bool, error) {
		<-ctx.Done()
		ended <- ctx.Err()
		return false, ctx.Err()
	})
	p := hostPool(t, block)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := p.Call(ctx, "host_call", args("fn", "block"))
	if !errors.Is(err, mlbridge.ErrTimeout) {
		t.Fatalf("call: %v", err)
	}
	if err := <-ended; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the Go function's ctx ended with %v", err)
	}
}

func TestHostFuncCallsPythonAgain(t *testing.T) {
	var p *mlbridge.Pool
	recurse := mlbridge.Func("recurse", func(ctx context.Context, in struct {
		N int `json:"n"`
	}) ([]int, error) {
		depth := mlbridge.CallbackDepth(ctx)
		if in.N == 0 {
			return []int{depth}, nil
		}
		inner, err := mlbridge.Decode[[]int](p.Call(ctx, "host_call", args("fn", "recurse", "args", args("n", in.N-1))))
		return append(inner, depth), err
	})
	p = hostPool(t, recurse)
	got, err := mlbridge.Decode[[]int](p.Call(context.Background(), "host_call", args("fn", "recurse", "args", args("n", 1))))
	if err != nil || !slices.Equal(got, []int{2, 1}) {
		t.Fatalf("depth 2: %v, %v", got, err)
	}
	got, err = mlbridge.Decode[[]int](p.Call(context.Background(), "host_call", args("fn", "recurse", "args", args("n", 3))))
	if err != nil || !slices.Equal(got, []int{4, 3, 2, 1}) {
		t.Fatalf("depth 4 (the limit): %v, %v", got, err)
	}
	_, err = p.Call(context.Background(), "host_call", args("fn", "recurse", "args", args("n", 4)))
	var re *mlbridge.RemoteError
	if !errors.Is(err, mlbridge.ErrCallbackDepth) || !errors.Is(err, mlbridge.ErrInvalidArgument) || !errors.As(err, &re) || re.Type != "CallbackDepthExceeded" {
		t.Fatalf("depth 5: %v", err)
	}
	t.Logf("depth 5: %v", err)
	if got := poolCall[string](t, p, "echo", args("value", "ok")); got != "ok" {
		t.Fatal(got)
	}
}

func TestHostFuncDepthConfigurable(t *testing.T) {
	var p *mlbridge.Pool
	recurse := mlbridge.Func("recurse", func(ctx context.Context, in struct {
		N int `json:"n"`
	}) (int, error) {
		if in.N == 0 {
			return mlbridge.CallbackDepth(ctx), nil
		}
		return mlbridge.Decode[int](p.Call(ctx, "host_call", args("fn", "recurse", "args", args("n", in.N-1))))
	})
	p = openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.HostFuncs, c.MaxCallbackDepth = 1, []mlbridge.HostFunc{recurse}, 1
	})
	if d, err := mlbridge.Decode[int](p.Call(context.Background(), "host_call", args("fn", "recurse", "args", args("n", 0)))); err != nil || d != 1 {
		t.Fatalf("depth 1: %v %v", d, err)
	}
	if _, err := p.Call(context.Background(), "host_call", args("fn", "recurse", "args", args("n", 1))); !errors.Is(err, mlbridge.ErrCallbackDepth) {
		t.Fatalf("depth 2 with a limit of 1: %v", err)
	}
}

func TestHostFuncConcurrent(t *testing.T) {
	var running, most atomic.Int32
	slow := mlbridge.Func("slow", func(ctx context.Context, in weatherIn) (weatherOut, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(5 * time.Millisecond)
		return weatherOut{City: in.City, I: in.I}, nil
	})
	p := hostPool(t, slow)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			city := fmt.Sprint("c", g)
			op, a := "host_call_many", args("fn", "slow", "n", 5, "args", args("city", city))
			if g%4 == 0 {
				op, a = "host_call_sync", args("fn", "slow", "args", args("city", city, "i", 7))
			}
			res, err := p.Call(context.Background(), op, a)
			if err != nil {
				errs <- err
				return
			}
			if g%4 == 0 {
				out, err := mlbridge.Decode[weatherOut](res, nil)
				if err != nil || out != (weatherOut{City: city, I: 7}) {
					errs <- fmt.Errorf("%s: %+v %v", op, out, err)
				}
				return
			}
			outs, err := mlbridge.Decode[[]weatherOut](res, nil)
			if err != nil || len(outs) != 5 {
				errs <- fmt.Errorf("%s: %+v %v", op, outs, err)
				return
			}
			for i, o := range outs {
				if o != (weatherOut{City: city, I: i}) {
					errs <- fmt.Errorf("%s: answer %d is %+v: answers crossed", op, i, o)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if most.Load() < 10 {
		t.Errorf("at most %d Go functions ran at once: callbacks are serialized", most.Load())
	}
	t.Logf("%d host functions ran at once at most", most.Load())
}

func TestHostFuncConfigErrors(t *testing.T) {
	ctx := context.Background()
	f := weatherFunc(nil)
	_, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{Config: mlbridge.Config{Bridge: "x:Y", HostFuncs: []mlbridge.HostFunc{f, f}}})
	if !errors.Is(err, mlbridge.ErrInvalidConfiguration) {
		t.Fatalf("two functions of one name: %v", err)
	}
	_, err = mlbridge.Open(ctx, mlbridge.Config{Bridge: "x:Y", HostFuncs: []mlbridge.HostFunc{{}}})
	if !errors.Is(err, mlbridge.ErrInvalidConfiguration) {
		t.Fatalf("a zero HostFunc: %v", err)
	}
}

func TestHostFuncOnBridge(t *testing.T) {
	b := open(t, func(c *mlbridge.Config) { c.HostFuncs = []mlbridge.HostFunc{weatherFunc(nil)} })
	got := call[weatherOut](t, b, "host_call", args("fn", "weather", "args", args("city", "Lima")))
	if got.City != "Lima" {
		t.Fatal(got)
	}
}

// A registry gives each bridge the host functions RegistryOptions.HostFuncs returns for it.
func TestHostFuncsThroughRegistry(t *testing.T) {
	f := weatherFunc(nil)
	r, err := mlbridge.NewRegistry(mlbridge.RegistryConfig{Bridges: map[string]mlbridge.BridgeConfig{
		"agent": {Bridge: "mlbridge_worker.echo:EchoBridge"}, "plain": {Bridge: "mlbridge_worker.echo:EchoBridge"},
	}}, mlbridge.RegistryOptions{HostFuncs: func(bridge string) []mlbridge.HostFunc {
		if bridge == "agent" {
			return []mlbridge.HostFunc{f}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	agent, err := r.PoolConfig("agent")
	if err != nil || len(agent.HostFuncs) != 1 || agent.HostFuncs[0].Name() != "weather" {
		t.Fatalf("agent: %v %v", agent.HostFuncs, err)
	}
	if plain, _ := r.PoolConfig("plain"); len(plain.HostFuncs) != 0 {
		t.Fatalf("plain: %v", plain.HostFuncs)
	}
}

// The schema derived from In, as Python (a DSPy tool) sees it.
func TestHostFuncSchema(t *testing.T) {
	type inner struct {
		X float64 `json:"x"`
	}
	type in struct {
		Name   string           `json:"name" desc:"who"`
		Tags   []string         `json:"tags,omitempty"`
		Limit  *int             `json:"limit"`
		Extra  map[string]bool  `msgpack:"extra,omitempty"`
		Point  inner            `json:"point"`
		Any    any              `json:"any,omitempty"`
		Skip   string           `json:"-"`
		hidden string           //nolint:unused // unexported: not an argument
		Raw    []byte           `json:"raw,omitempty"`
		Nested map[string][]int `json:"nested,omitempty"`
	}
	s := mlbridge.Func("f", func(context.Context, in) (bool, error) { return true, nil }).Schema()
	got := fmt.Sprint(s)
	want := "map[properties:map[any:map[] extra:map[additionalProperties:map[type:boolean] type:object] limit:map[type:integer] " +
		"name:map[description:who type:string] nested:map[additionalProperties:map[items:map[type:integer] type:array] type:object] " +
		"point:map[properties:map[x:map[type:number]] required:[x] type:object] raw:map[contentEncoding:binary type:string] " +
		"tags:map[items:map[type:string] type:array]] required:[name point] type:object]"
	if got != want {
		t.Fatalf("schema\n got %s\nwant %s", got, want)
	}
	if s := mlbridge.Func("g", func(context.Context, map[string]any) (bool, error) { return true, nil }).Schema(); fmt.Sprint(s) != "map[type:object]" {
		t.Fatalf("a map takes anything: %v", s)
	}
}

// EmbeddedBase is embedded by the arguments in TestHostFuncEmbeddedArguments.
type EmbeddedBase struct {
	City string `json:"city"`
}

type embeddedOpt struct {
	Country string `json:"country"`
}

// An embedded struct's fields are arguments at the top level, as the decoder reads them (and
// encoding/json would): in the schema, in the required check, in the call. Behind a pointer,
// or tagged omitzero, they are optional.
func TestHostFuncEmbeddedArguments(t *testing.T) {
	type in struct {
		EmbeddedBase
		*embeddedOpt
		Units string `json:"units,omitzero"`
	}
	f := mlbridge.Func("weather", func(_ context.Context, a in) (string, error) {
		return a.City + "/" + a.Units, nil
	})
	if got, want := fmt.Sprint(f.Schema()), "map[properties:map[city:map[type:string] country:map[type:string] units:map[type:string]] required:[city] type:object]"; got != want {
		t.Fatalf("schema\n got %s\nwant %s", got, want)
	}
	args := func(v map[string]any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if out, err := f.Invoke(context.Background(), args(map[string]any{"city": "Paris"})); err != nil || out != "Paris/" {
		t.Fatalf("flattened arguments: %v, %v", out, err)
	}
	if _, err := f.Invoke(context.Background(), args(map[string]any{"units": "C"})); !errors.Is(err, mlbridge.ErrInvalidArgument) || !strings.Contains(err.Error(), "missing city") {
		t.Fatalf("the embedded struct's field left out: %v, want invalid_argument naming city", err)
	}
}
