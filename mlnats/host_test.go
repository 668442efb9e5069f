package mlnats_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
)

// Host functions across NATS: a node's pool forwards "whoami", "block", "fail" and
// "recurse" (mlnats.Forward) to whichever client made the call; each client registers its
// own Go functions in Options.HostFuncs.

type whoIn struct {
	Tag string `json:"tag" desc:"echoed back"`
	I   int    `json:"i,omitempty"`
}

type whoOut struct {
	Client string `json:"client"`
	Tag    string `json:"tag"`
	Depth  int    `json:"depth"`
	User   string `json:"user"` // a value of the client's call's ctx
}

type userKey struct{}

// hostClient is one client's Go functions: "whoami" answers with the client's name (a
// value only that client has) and records each invocation on the client's side.
type hostClient struct {
	name string
	mu   sync.Mutex
	seen []string
}

func (c *hostClient) whoami() mlbridge.HostFunc {
	return mlbridge.Func("whoami", func(ctx context.Context, in whoIn) (whoOut, error) {
		c.mu.Lock()
		c.seen = append(c.seen, in.Tag)
		c.mu.Unlock()
		user, _ := ctx.Value(userKey{}).(string)
		return whoOut{Client: c.name, Tag: in.Tag, Depth: mlbridge.CallbackDepth(ctx), User: user}, nil
	}, mlbridge.Describe("Which client runs this"))
}

func (c *hostClient) invoked() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.seen)
}

// forwardingNode starts a node whose pool forwards funcs to the calling client.
func forwardingNode(t *testing.T, e *mlnats.Embedded, configure func(*mlnats.NodeConfig), funcs ...mlbridge.HostFunc) *testNode {
	t.Helper()
	if configure == nil {
		configure = func(*mlnats.NodeConfig) {}
	}
	return startNodeWith(t, e, configure, func(c *mlbridge.PoolConfig) { c.HostFuncs = funcs })
}

func hostArgs(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// TestHostFuncRunsInTheCallingClient: two clients call the same node; Python's host.call
// (async and sync handlers) runs each client's own Go function, in that client.
func TestHostFuncRunsInTheCallingClient(t *testing.T) {
	e := embedded(t)
	a, b := &hostClient{name: "client-a"}, &hostClient{name: "client-b"}
	node := forwardingNode(t, e, nil, mlnats.ForwardFunc(a.whoami()))
	ra := dial(t, e, mlnats.Options{HostFuncs: []mlbridge.HostFunc{a.whoami()}})
	rb := dial(t, e, mlnats.Options{HostFuncs: []mlbridge.HostFunc{b.whoami()}})
	ctx := context.Background()

	for _, op := range []string{"host_call", "host_call_sync"} {
		for _, c := range []struct {
			r    *mlnats.Remote
			want string
		}{{ra, "client-a"}, {rb, "client-b"}} {
			callCtx := context.WithValue(ctx, userKey{}, "user of "+c.want)
			got, err := mlbridge.Decode[whoOut](c.r.Call(callCtx, op, hostArgs("fn", "whoami", "args", hostArgs("tag", op+"/"+c.want))))
			if err != nil || got.Client != c.want || got.Tag != op+"/"+c.want || got.Depth != 1 || got.User != "user of "+c.want {
				t.Fatalf("%s through %s: %+v %v", op, c.want, got, err)
			}
		}
	}
	if got := a.invoked(); !slices.Equal(got, []string{"host_call/client-a", "host_call_sync/client-a"}) {
		t.Errorf("client a ran %v", got)
	}
	if got := b.invoked(); !slices.Equal(got, []string{"host_call/client-b", "host_call_sync/client-b"}) {
		t.Errorf("client b ran %v", got)
	}
	// Concurrent host calls from one handler, over one Submit.
	got, err := mlbridge.Decode[[]whoOut](ra.Submit(ctx, "host_call_many", hostArgs("fn", "whoami", "n", 8, "args", hostArgs("tag", "many"))).Wait(ctx))
	if err != nil || len(got) != 8 || got[7].Client != "client-a" {
		t.Fatalf("host_call_many: %v %v", got, err)
	}
	// The workers were told the function's description and schema at start.
	funcs, err := mlbridge.Decode[map[string]map[string]any](ra.Call(ctx, "host_funcs", nil))
	if err != nil || funcs["whoami"]["description"] != "Which client runs this" {
		t.Fatalf("host.functions(): %v %v", funcs, err)
	}
	if props, _ := funcs["whoami"]["schema"].(map[string]any)["properties"].(map[string]any); props["tag"] == nil {
		t.Fatalf("schema: %v", funcs["whoami"]["schema"])
	}
	// A local call on the node's pool comes from no client: typed not-found in Python.
	caught, err := mlbridge.Decode[map[string]any](node.pool.Call(ctx, "host_call_catch", hostArgs("fn", "whoami")))
	if err != nil || caught["class"] != "NotFound" || caught["category"] != "not_found" {
		t.Fatalf("local call: %v %v", caught, err)
	}
}

// TestHostFuncErrorsTypedAcrossNATS: a Go error in the client reaches Python as its
// category, and, uncaught there, the client with its category and type.
func TestHostFuncErrorsTypedAcrossNATS(t *testing.T) {
	e := embedded(t)
	fail := mlbridge.Func("fail", func(ctx context.Context, in struct {
		Kind string `json:"kind"`
	}) (bool, error) {
		switch in.Kind {
		case "rate":
			return false, fmt.Errorf("%w: client says slow down", mlbridge.ErrRateLimit)
		case "arg":
			return false, fmt.Errorf("%w: client refuses", mlbridge.ErrInvalidArgument)
		}
		return false, errors.New("client broke")
	})
	forwardingNode(t, e, nil, mlnats.ForwardFunc(fail))
	r := dial(t, e, mlnats.Options{HostFuncs: []mlbridge.HostFunc{fail}})
	ctx := context.Background()
	for _, c := range []struct{ kind, class, category, msg string }{
		{"rate", "RateLimit", "rate_limit", "client says slow down"},
		{"arg", "InvalidArgument", "invalid_argument", "client refuses"},
		{"other", "HostCallError", "internal", "client broke"},
	} {
		got, err := mlbridge.Decode[map[string]any](r.Call(ctx, "host_call_catch", hostArgs("fn", "fail", "args", hostArgs("kind", c.kind))))
		if err != nil || got["class"] != c.class || got["category"] != c.category || got["type"] != "HostError" || !hostContains(got["message"], c.msg) {
			t.Fatalf("%s: Python saw %v (%v)", c.kind, got, err)
		}
	}
	// Arguments the client's function refuses: invalid_argument, decided in the client.
	got, err := mlbridge.Decode[map[string]any](r.Call(ctx, "host_call_catch", hostArgs("fn", "fail", "args", hostArgs("town", 1))))
	if err != nil || got["category"] != "invalid_argument" || !hostContains(got["message"], "town") {
		t.Fatalf("bad arguments: %v %v", got, err)
	}
	// Uncaught: the client gets the RemoteError Python raised, of the Go error's category.
	_, err = r.Call(ctx, "host_call", hostArgs("fn", "fail", "args", hostArgs("kind", "rate")))
	var re *mlbridge.RemoteError
	if !errors.Is(err, mlbridge.ErrRateLimit) || !errors.As(err, &re) || re.Type != "HostError" || re.Category != "rate_limit" {
		t.Fatalf("uncaught: %v", err)
	}
	t.Logf("uncaught: %v", err)
}

// TestHostFuncNotRegisteredByTheClient: the node forwards a name the client lacks, or the
// client serves no host functions at all: typed not-found in Python and in the client.
func TestHostFuncNotRegisteredByTheClient(t *testing.T) {
	e := embedded(t)
	a := &hostClient{name: "a"}
	forwardingNode(t, e, nil, mlnats.Forward("missing", mlbridge.Describe("nobody has it")), mlnats.ForwardFunc(a.whoami()))
	withFuncs := dial(t, e, mlnats.Options{HostFuncs: []mlbridge.HostFunc{a.whoami()}})
	without := dial(t, e, mlnats.Options{})
	ctx := context.Background()
	for _, c := range []struct {
		name string
		r    *mlnats.Remote
		fn   string
		msg  string
	}{
		{"name the client lacks", withFuncs, "missing", `no host function named "missing"`},
		{"client without host functions", without, "whoami", "came from none that serves host functions"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := mlbridge.Decode[map[string]any](c.r.Call(ctx, "host_call_catch", hostArgs("fn", c.fn)))
			if err != nil || got["class"] != "NotFound" || got["category"] != "not_found" || !hostContains(got["message"], c.msg) {
				t.Fatalf("Python saw %v (%v)", got, err)
			}
			_, err = c.r.Call(ctx, "host_call", hostArgs("fn", c.fn))
			if !errors.Is(err, mlbridge.ErrNotFound) {
				t.Fatalf("uncaught: %v", err)
			}
		})
	}
	if got := a.invoked(); len(got) != 0 {
		t.Fatalf("whoami ran %v", got)
	}
	// Two of one name: refused at Dial.
	_, err := mlnats.Dial(ctx, connect(t, e), "echo", mlnats.Options{HostFuncs: []mlbridge.HostFunc{a.whoami(), a.whoami()}})
	if !errors.Is(err, mlbridge.ErrInvalidConfiguration) {
		t.Fatalf("duplicate: %v", err)
	}
}

// wantCancelled waits for a blockFunc's ctx to end, which must be with Canceled (the
// deadline is only there to tell a function left running from a slow one).
func wantCancelled(t *testing.T, ended <-chan error) {
	t.Helper()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the Go function's ctx ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the Go function's ctx was not cancelled: it still runs 10 s later")
	}
}

// blockFunc blocks until its ctx ends and reports the ctx (its deadline, its end).
func blockFunc(started chan<- context.Context, ended chan<- error) mlbridge.HostFunc {
	return mlbridge.Func("block", func(ctx context.Context, _ struct{}) (bool, error) {
		started <- ctx
		<-ctx.Done()
		ended <- ctx.Err()
		return false, ctx.Err()
	})
}

// TestHostFuncDeadlineCrossesNATS: the client's deadline reaches the node, Python, and back
// to the client's Go function, whose ctx ends with DeadlineExceeded.
func TestHostFuncDeadlineCrossesNATS(t *testing.T) {
	e := embedded(t)
	started, ended := make(chan context.Context, 1), make(chan error, 1)
	block := blockFunc(started, ended)
	forwardingNode(t, e, nil, mlnats.ForwardFunc(block))
	r := dial(t, e, mlnats.Options{HostFuncs: []mlbridge.HostFunc{block}})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	callDeadline, _ := ctx.Deadline()
	_, err := r.Call(ctx, "host_call", hostArgs("fn", "block"))
	if !errors.Is(err, mlbridge.ErrTimeout) {
		t.Fatalf("call: %v", err)
	}
	fctx := <-started
	dl, ok := fctx.Deadline()
	if !ok {
		t.Fatal("the Go function's ctx has no deadline")
	}
	// The function's ctx derives from the client's call's: the same deadline, to the ns.
	if !dl.Equal(callDeadline) {
		t.Errorf("the function's deadline is %v from the call's", dl.Sub(callDeadline))
	}
	if err := <-ended; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the Go function's ctx ended with %v", err)
	}
}

// TestHostFuncCancelCrossesNATS: cancelling the client's call cancels Python's pending
// host.call and the client's Go function's ctx.
func TestHostFuncCancelCrossesNATS(t *testing.T) {
	e := embedded(t)
	started, ended := make(chan context.Context, 1), make(chan error, 1)
	block := blockFunc(started, ended)
	node := forwardingNode(t, e, nil, mlnats.ForwardFunc(block))
	r := dial(t, e, mlnats.Options{HostFuncs: []mlbridge.HostFunc{block}})
	for _, op := range []string{"host_call", "host_call_sync"} {
		t.Run(op, func(t *testing.T) {
			token := "nats-cancel-" + op
			ctx, cancel := context.WithCancel(context.Background())
			f := r.Submit(ctx, op, hostArgs("fn", "block", "token", token))
			<-started
			cancel()
			if _, err := f.Wait(context.Background()); !errors.Is(err, mlbridge.ErrCancelled) {
				t.Fatalf("call: %v", err)
			}
			wantCancelled(t, ended)
			waitForHostToken(t, node.pool, "hcall_cancelled:"+token)
		})
	}
}

// TestHostFuncClientVanishes: the client's connection drops while its function runs: the
// node's host call fails as unavailable once the client is silent for 4 heartbeats; Python
// sees Unavailable; nothing hangs.
func TestHostFuncClientVanishes(t *testing.T) {
	e := embedded(t)
	nc := connect(t, e)
	vanish := mlbridge.Func("vanish", func(ctx context.Context, _ struct{}) (bool, error) {
		nc.Close() // the client's process is gone, as far as NATS can tell
		return true, nil
	})
	results := make(chan map[string]any, 1)
	startNodeWith(t, e, func(c *mlnats.NodeConfig) {
		c.HostHeartbeat = 20 * time.Millisecond
		c.Adapters["echo"] = &resultTap{Adapter: c.Adapters["echo"], out: results}
	}, func(c *mlbridge.PoolConfig) { c.HostFuncs = []mlbridge.HostFunc{mlnats.ForwardFunc(vanish)} })
	r, err := mlnats.Dial(context.Background(), nc, "echo", mlnats.Options{Logger: quiet, HostFuncs: []mlbridge.HostFunc{vanish}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	start := time.Now()
	_, err = r.Call(context.Background(), "host_call_catch", hostArgs("fn", "vanish"))
	if !errors.Is(err, mlbridge.ErrClosed) && !errors.Is(err, mlbridge.ErrUnavailable) {
		t.Fatalf("the vanished client's own call: %v", err)
	}
	select {
	case got := <-results:
		if got["class"] != "Unavailable" || got["category"] != "unavailable" || !hostContains(got["message"], "silent") {
			t.Fatalf("Python saw %v", got)
		}
		t.Logf("Python saw %v after %v", got, time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("the node's host call hung")
	}
}

// TestHostFuncNestedCallsCountDepth: a client's Go function may call the Remote again; the
// depth travels with it, and the node's MaxCallbackDepth bounds the chain.
func TestHostFuncNestedCallsCountDepth(t *testing.T) {
	e := embedded(t)
	var r *mlnats.Remote
	recurse := mlbridge.Func("recurse", func(ctx context.Context, in struct {
		N int `json:"n"`
	}) ([]int, error) {
		depth := mlbridge.CallbackDepth(ctx)
		if in.N == 0 {
			return []int{depth}, nil
		}
		inner, err := mlbridge.Decode[[]int](r.Call(ctx, "host_call", hostArgs("fn", "recurse", "args", hostArgs("n", in.N-1))))
		return append(inner, depth), err
	})
	startNodeWith(t, e, func(*mlnats.NodeConfig) {}, func(c *mlbridge.PoolConfig) {
		c.HostFuncs, c.MaxCallbackDepth = []mlbridge.HostFunc{mlnats.ForwardFunc(recurse)}, 2
	})
	r = dial(t, e, mlnats.Options{HostFuncs: []mlbridge.HostFunc{recurse}})
	ctx := context.Background()
	got, err := mlbridge.Decode[[]int](r.Call(ctx, "host_call", hostArgs("fn", "recurse", "args", hostArgs("n", 1))))
	if err != nil || !slices.Equal(got, []int{2, 1}) {
		t.Fatalf("depth 2: %v %v", got, err)
	}
	_, err = r.Call(ctx, "host_call", hostArgs("fn", "recurse", "args", hostArgs("n", 2)))
	if !errors.Is(err, mlbridge.ErrCallbackDepth) {
		t.Fatalf("depth 3 with a limit of 2: %v", err)
	}
	t.Logf("depth 3: %v", err)
}

func hostContains(v any, sub string) bool {
	s, _ := v.(string)
	return strings.Contains(s, sub)
}

// resultTap passes an adapter's calls on and hands each call's result to out.
type resultTap struct {
	mlbridge.Adapter
	out chan<- map[string]any
}

func (a *resultTap) Call(ctx context.Context, op string, args any, opts ...mlbridge.CallOption) (mlbridge.Result, error) {
	res, err := a.Adapter.Call(ctx, op, args, opts...)
	if v, derr := mlbridge.Decode[map[string]any](res, err); derr == nil {
		a.out <- v
	}
	return res, err
}

func waitForHostToken(t *testing.T, p *mlbridge.Pool, token string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		got, err := mlbridge.Decode[[]string](p.Call(context.Background(), "cancelled_tokens", nil))
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(got, token) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("Python never recorded %q", token)
}

// TestHostFuncTraceCrossesNATS: the client's Go function runs in the call's trace, under the
// node's span of the Python handler, as it would under a local pool's.
func TestHostFuncTraceCrossesNATS(t *testing.T) {
	e := embedded(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	seen := make(chan trace.SpanContext, 1)
	spanOf := mlbridge.Func("span_of", func(ctx context.Context, _ struct{}) (bool, error) {
		seen <- trace.SpanContextFromContext(ctx)
		return true, nil
	})
	startNodeWith(t, e, func(c *mlnats.NodeConfig) { c.Propagator = propagation.TraceContext{} }, func(c *mlbridge.PoolConfig) {
		c.TracerProvider, c.HostFuncs = tp, []mlbridge.HostFunc{mlnats.ForwardFunc(spanOf)}
	})
	r := dial(t, e, mlnats.Options{Propagator: propagation.TraceContext{}, HostFuncs: []mlbridge.HostFunc{spanOf}})
	ctx, span := tp.Tracer("client").Start(context.Background(), "client-op")
	if _, err := r.Call(ctx, "host_call", hostArgs("fn", "span_of")); err != nil {
		t.Fatal(err)
	}
	span.End()
	got := <-seen
	if got.TraceID() != span.SpanContext().TraceID() || !got.IsRemote() {
		t.Fatalf("the Go function ran in %v; the client's span is %v", got, span.SpanContext())
	}
	for _, s := range exp.GetSpans() {
		// the node's span of the Python handler (under the node pool's span of the call)
		if s.SpanContext.SpanID() == got.SpanID() && s.Name == "host_call" && s.SpanKind == trace.SpanKindServer {
			t.Logf("client %s -> node %s -> client's Go function (trace %s)", span.SpanContext().SpanID(), got.SpanID(), got.TraceID())
			return
		}
	}
	t.Fatalf("the Go function's parent span %s is none of the node's %d spans", got.SpanID(), len(exp.GetSpans()))
}

// TestHostFuncResultOverMaxPayload: a client's result too large for one NATS message, with no
// JetStream to store it in, fails the host call typed (serialization), not by silence.
func TestHostFuncResultOverMaxPayload(t *testing.T) {
	e, err := mlnats.StartEmbedded(mlnats.EmbeddedConfig{}) // no StoreDir: no JetStream
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	big := mlbridge.Func("big", func(ctx context.Context, _ struct{}) (string, error) {
		return strings.Repeat("x", 2<<20), nil
	})
	forwardingNode(t, e, nil, mlnats.ForwardFunc(big))
	r := dial(t, e, mlnats.Options{HostFuncs: []mlbridge.HostFunc{big}})
	got, err := mlbridge.Decode[map[string]any](r.Call(context.Background(), "host_call_catch", hostArgs("fn", "big")))
	if err != nil || got["class"] != "HostCallError" || got["category"] != "serialization" || !hostContains(got["message"], "max payload") {
		t.Fatalf("Python saw %v (%v)", got, err)
	}
}

// TestHostFuncNodeGivesUp: Python stops waiting for its host call while the client's call
// goes on: the node tells the client, whose Go function's ctx is cancelled.
func TestHostFuncNodeGivesUp(t *testing.T) {
	e := embedded(t)
	started, ended := make(chan context.Context, 1), make(chan error, 1)
	block := blockFunc(started, ended)
	forwardingNode(t, e, nil, mlnats.ForwardFunc(block))
	r := dial(t, e, mlnats.Options{HostFuncs: []mlbridge.HostFunc{block}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := mlbridge.Decode[string](r.Call(ctx, "host_call_give_up", hostArgs("fn", "block", "seconds", 0.2)))
	if err != nil || got != "gave up" {
		t.Fatalf("call: %q %v", got, err)
	}
	wantCancelled(t, ended)
	if ctx.Err() != nil {
		t.Fatal("the client's call ended; the cancel must come from the node")
	}
}

// TestHostFuncEndsWithItsCallWhenTheNodeDies: the node running the call is killed while the
// client's Go function runs: the call fails (ErrNodeLost) and the function's ctx ends with
// it — a dead node sends no cancel, so the client must not wait for one.
func TestHostFuncEndsWithItsCallWhenTheNodeDies(t *testing.T) {
	e := embedded(t)
	started, ended := make(chan context.Context, 1), make(chan error, 1)
	block := blockFunc(started, ended)
	node := forwardingNode(t, e, nil, mlnats.ForwardFunc(block))
	r := dial(t, e, mlnats.Options{HostFuncs: []mlbridge.HostFunc{block}, Heartbeat: 50 * time.Millisecond})
	// Call, not Submit: a Future cancels its own ctx once complete, which would hide the leak
	done := make(chan error, 1)
	go func() {
		_, err := r.Call(context.Background(), "host_call", hostArgs("fn", "block", "token", "node-dies"))
		done <- err
	}()
	<-started
	node.kill()
	if err := <-done; !errors.Is(err, mlnats.ErrNodeLost) {
		t.Fatalf("call: %v, want ErrNodeLost", err)
	}
	wantCancelled(t, ended)
}
