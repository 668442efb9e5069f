package mlnats_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/dspy"
	"github.com/mlbridge/mlbridge/mlnats"
	"github.com/mlbridge/mlbridge/store"
)

// TestNodes: calls spread over three nodes; a node killed under load costs no hung call,
// idempotent calls all succeed, the others fail typed, traffic moves to the survivors; a
// node that joins takes calls soon after.
func TestNodes(t *testing.T) {
	e := embedded(t)
	nodes := []*testNode{startNode(t, e), startNode(t, e), startNode(t, e)}
	r := dial(t, e, mlnats.Options{Heartbeat: 50 * time.Millisecond}) // lost after 200ms
	ctx := context.Background()

	for i := range 90 {
		v, err := mlbridge.Decode[int](r.Call(ctx, "add", map[string]any{"a": i, "b": 1}))
		if err != nil || v != i+1 {
			t.Fatalf("add: %v %v", v, err)
		}
	}
	counts := func() []int64 {
		var out []int64
		for _, n := range nodes {
			out = append(out, n.c.n.Load())
		}
		return out
	}
	before := counts()
	t.Logf("90 calls over 3 nodes: %v", before)
	for i, c := range before {
		if c < 10 {
			t.Errorf("node %d took %d of 90 calls", i, c)
		}
	}

	// Load: 24 callers, half idempotent, each call sleeping 100ms in Python. Kill node 0
	// while calls are in flight on it.
	type outcome struct {
		idem bool
		err  error
		took time.Duration
	}
	var mu sync.Mutex
	var outs []outcome
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				idem := c%2 == 0
				var opts []mlbridge.CallOption
				if idem {
					opts = append(opts, mlbridge.Idempotent())
				}
				start := time.Now()
				_, err := r.Call(ctx, "sleep", map[string]any{"seconds": 0.1}, opts...)
				mu.Lock()
				outs = append(outs, outcome{idem, err, time.Since(start)})
				mu.Unlock()
			}
		}()
	}
	time.Sleep(400 * time.Millisecond)
	killedAt := counts()
	nodes[0].kill()
	time.Sleep(1200 * time.Millisecond)
	close(stop)
	wg.Wait()
	after := counts()

	var ok, idemFailed, lost, other int
	var slowest time.Duration
	for _, o := range outs {
		slowest = max(slowest, o.took)
		switch {
		case o.err == nil:
			ok++
		case o.idem:
			idemFailed++
			t.Errorf("idempotent call failed: %v", o.err)
		case errors.Is(o.err, mlnats.ErrNodeLost) && errors.Is(o.err, mlbridge.ErrUnavailable):
			lost++
		default:
			other++
			t.Errorf("non-idempotent call failed untyped: %v", o.err)
		}
	}
	t.Logf("under load with node 0 killed: %d calls, %d ok, %d non-idempotent lost (ErrNodeLost), slowest %v; per node at kill %v, after %v",
		len(outs), ok, lost, slowest, killedAt, after)
	if slowest > 2*time.Second {
		t.Errorf("a call took %v: it hung on the dead node", slowest)
	}
	if after[1]-killedAt[1] < 10 || after[2]-killedAt[2] < 10 {
		t.Errorf("traffic did not move to the survivors: %v -> %v", killedAt, after)
	}

	// A node that joins is used soon after.
	joined := startNode(t, e)
	deadline := time.Now().Add(5 * time.Second)
	for joined.c.n.Load() == 0 && time.Now().Before(deadline) {
		if _, err := r.Call(ctx, "noop", nil); err != nil {
			t.Fatal(err)
		}
	}
	if joined.c.n.Load() == 0 {
		t.Fatal("the node that joined took no call in 5s")
	}
	t.Logf("the joined node took its first call %v before the deadline", time.Until(deadline).Round(time.Millisecond))
}

// TestNoResponders: a bridge no node serves fails at once with ErrUnavailable, at Dial and
// on a call once the last node left (drained).
func TestNoResponders(t *testing.T) {
	e := embedded(t)
	start := time.Now()
	_, err := mlnats.Dial(context.Background(), connect(t, e), "echo", mlnats.Options{Logger: quiet})
	if !errors.Is(err, mlbridge.ErrUnavailable) || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("Dial with no node: %v after %v; want ErrUnavailable at once", err, time.Since(start))
	}
	n := startNode(t, e)
	r := dial(t, e, mlnats.Options{})
	if err := n.node.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, err = r.Call(context.Background(), "noop", nil, mlbridge.Idempotent())
	if !errors.Is(err, mlbridge.ErrUnavailable) || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("call after the last node left: %v after %v; want ErrUnavailable at once", err, time.Since(start))
	}
	t.Logf("no responders: %v (%v)", err, time.Since(start))
}

// TestDrain: a node shut down finishes the calls it took; new calls go to the other node.
func TestDrain(t *testing.T) {
	e := embedded(t)
	a, b := startNode(t, e), startNode(t, e)
	r := dial(t, e, mlnats.Options{})
	ctx := context.Background()
	var futures []*mlbridge.Future
	for range 6 {
		futures = append(futures, r.Submit(ctx, "sleep", map[string]any{"seconds": 0.5}))
	}
	time.Sleep(100 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- a.node.Shutdown(ctx) }()
	time.Sleep(50 * time.Millisecond)
	before := b.c.n.Load()
	for range 5 {
		if _, err := r.Call(ctx, "noop", nil); err != nil {
			t.Fatalf("call during a drain: %v", err)
		}
	}
	if b.c.n.Load()-before != 5 {
		t.Errorf("calls during the drain went to the draining node")
	}
	for _, f := range futures {
		if _, err := f.Wait(ctx); err != nil {
			t.Errorf("in-flight call of a draining node: %v", err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDeadlineAndCancel: a ctx deadline and a Future.Cancel reach the Python task on the node.
func TestDeadlineAndCancel(t *testing.T) {
	e := embedded(t)
	startNode(t, e)
	r := dial(t, e, mlnats.Options{})
	waitToken := func(token string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			toks, err := mlbridge.Decode[[]string](r.Call(context.Background(), "cancelled_tokens", nil))
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(toks, token) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("the worker never saw %s cancelled", token)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.Call(ctx, "sleep", map[string]any{"seconds": 30, "token": "deadline-1"})
	if !errors.Is(err, mlbridge.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	t.Logf("deadline: %v after %v", err, time.Since(start).Round(time.Millisecond))
	waitToken("deadline-1")

	f := r.Submit(context.Background(), "sleep", map[string]any{"seconds": 30, "token": "cancel-1"})
	time.Sleep(300 * time.Millisecond)
	f.Cancel()
	if _, err := f.Wait(context.Background()); !errors.Is(err, mlbridge.ErrCancelled) {
		t.Fatalf("cancelled future: %v", err)
	}
	waitToken("cancel-1")

	// Cancel before the node said who it is (no heartbeat yet): the broadcast reaches it.
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel2() }()
	if _, err := r.Call(ctx2, "sleep", map[string]any{"seconds": 30, "token": "cancel-2"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
	waitToken("cancel-2")
}

// TestErrorTypes: errors keep their types and sentinels across the wire.
func TestErrorTypes(t *testing.T) {
	e := embedded(t)
	startNode(t, e)
	r := dial(t, e, mlnats.Options{})
	ctx := context.Background()

	_, err := r.Call(ctx, "fail", map[string]any{"type": "InvalidArgument", "message": "bad x"})
	re, ok := errors.AsType[*mlbridge.RemoteError](err)
	if !errors.Is(err, mlbridge.ErrInvalidArgument) || !ok || re.Category != "invalid_argument" || re.Type != "InvalidArgument" || re.Message != "bad x" || re.Op != "fail" {
		t.Fatalf("remote error: %#v (%v)", re, err)
	}
	_, err = r.Call(ctx, "fail", map[string]any{"type": "ValueError"})
	if re, ok := errors.AsType[*mlbridge.RemoteError](err); !ok || re.Type != "ValueError" || re.Traceback == "" {
		t.Fatalf("ValueError: %v", err)
	}
	if _, err := r.Call(ctx, "no_such_op", nil); !errors.Is(err, mlbridge.ErrUnknownOp) {
		t.Fatalf("unknown op: %v", err)
	}
	if _, err := r.Get(ctx, "missing"); !errors.Is(err, mlbridge.ErrNotFound) || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	_, err = r.Call(ctx, "exit", map[string]any{"code": 3, "message": "bye"})
	xe, ok := errors.AsType[*mlbridge.ExitError](err)
	if !errors.Is(err, mlbridge.ErrWorkerExited) || !ok || xe.ExitCode != 3 {
		t.Fatalf("exit: %#v (%v)", xe, err)
	}
	t.Logf("exit error across the wire: %v", err)
	if _, err := r.Call(ctx, "add", map[string]any{"a": "x", "b": 1}); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("add with a string: %v", err)
	}
}

// TestStream: chunks arrive in order under a small credit window with a slow consumer;
// stopping early cancels the Python generator.
func TestStream(t *testing.T) {
	e := embedded(t)
	startNode(t, e)
	r := dial(t, e, mlnats.Options{Window: 4})
	ctx := context.Background()
	var got []int
	for res, err := range r.Stream(ctx, "count", map[string]any{"n": 40}) {
		if err != nil {
			t.Fatal(err)
		}
		var v int
		if err := res.Decode(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
		if v%10 == 0 {
			time.Sleep(30 * time.Millisecond) // slow consumer: the node waits for credit
		}
	}
	if len(got) != 40 || got[39] != 39 {
		t.Fatalf("got %v", got)
	}
	for res, err := range r.Stream(ctx, "count", map[string]any{"n": 1000, "delay": 0.01, "token": "stream-1"}) {
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := mlbridge.Decode[int](res, nil); v == 5 {
			break
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		toks, _ := mlbridge.Decode[[]string](r.Call(ctx, "cancelled_tokens", nil))
		if slices.Contains(toks, "stream-1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the generator was not cancelled")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, err := range r.Stream(ctx, "count", map[string]any{"n": 5, "fail_at": 2}) {
		if err != nil {
			if _, ok := errors.AsType[*mlbridge.RemoteError](err); !ok {
				t.Fatalf("stream error: %v", err)
			}
		}
	}
}

// TestDefinitionsAndTypedClient: definitions through a node, and the dspy client unchanged
// over a Remote (its calls reach the node; no DSPy needed for the ones that fail).
func TestDefinitionsAndTypedClient(t *testing.T) {
	e := embedded(t)
	startNode(t, e)
	r := dial(t, e, mlnats.Options{})
	ctx := context.Background()
	d, err := r.Create(ctx, store.Definition{ID: "g1", Kind: "greeting", Spec: map[string]any{"prefix": "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Version == 0 {
		t.Errorf("created definition has no version: %+v", d)
	}
	if _, err := r.Create(ctx, store.Definition{ID: "g1", Kind: "greeting", IfAbsent: true}); !errors.Is(err, store.ErrExists) {
		t.Errorf("IfAbsent on an existing id: %v", err)
	}
	if got, err := r.Get(ctx, "g1"); err != nil || got.Spec["prefix"] != "hi" {
		t.Fatalf("get: %+v %v", got, err)
	}
	if ds, err := r.List(ctx, "greeting"); err != nil || len(ds) != 1 {
		t.Fatalf("list: %v %v", ds, err)
	}
	if _, err := r.Describe(ctx, "g1"); err != nil {
		t.Fatalf("describe: %v", err)
	}
	res, err := r.Execute(ctx, "g1", map[string]any{"name": "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := res.Value()
	t.Logf("execute through the node: %v", v)
	if err := r.Delete(ctx, "g1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if info := r.Info(); info.Framework != "echo" || len(info.Handlers) == 0 {
		t.Fatalf("info: %+v", info)
	}
	if st := r.Stats(); st.Size != 1 {
		t.Fatalf("stats: %+v", st)
	}
	_ = dspy.New(r) // compiles and constructs over any Adapter
}

// TestTrace: the client's span is the parent of the node's call span (which the pool carries
// on into Python).
func TestTrace(t *testing.T) {
	e := embedded(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.TracerProvider = tp })
	n, err := mlnats.NewNode(connect(t, e), mlnats.NodeConfig{
		Adapters: map[string]mlbridge.Adapter{"echo": p}, Logger: quiet, Propagator: propagation.TraceContext{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	r := dial(t, e, mlnats.Options{Propagator: propagation.TraceContext{}})
	ctx, span := tp.Tracer("client").Start(context.Background(), "client-op")
	if _, err := r.Call(ctx, "noop", nil); err != nil {
		t.Fatal(err)
	}
	span.End()
	for _, s := range exp.GetSpans() {
		if s.Name == "noop" && s.SpanKind == trace.SpanKindClient { // the pool's; its handler span is under it
			if s.Parent.SpanID() != span.SpanContext().SpanID() || s.SpanContext.TraceID() != span.SpanContext().TraceID() {
				t.Fatalf("node span %v parent %v; client span %v", s.SpanContext, s.Parent, span.SpanContext())
			}
			t.Logf("one trace: client %s -> node span %s (trace %s)", span.SpanContext().SpanID(), s.SpanContext.SpanID(), s.SpanContext.TraceID())
			return
		}
	}
	t.Fatal(fmt.Sprintf("no node span among %d", len(exp.GetSpans())))
}

// TestMicroDiscovery: each node is a micro service whose metadata describes the bridge.
func TestMicroDiscovery(t *testing.T) {
	e := embedded(t)
	a, b := startNode(t, e), startNode(t, e)
	subj, err := micro.ControlSubject(micro.InfoVerb, "mlbridge-echo", "")
	if err != nil {
		t.Fatal(err)
	}
	nc := connect(t, e)
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishRequest(subj, inbox, nil); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for range 2 {
		m, err := sub.NextMsg(2 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var info micro.Info
		if err := json.Unmarshal(m.Data, &info); err != nil {
			t.Fatal(err)
		}
		md := info.Metadata
		if info.Version != mlnats.ServiceVersion || md["framework"] != "echo" || md["bridge"] != "echo" || !strings.Contains(md["ops"], `"count":"async_gen"`) || len(info.Endpoints) != 4 {
			t.Fatalf("service info: %+v", info)
		}
		ids[md["node"]] = true
	}
	if !ids[a.node.ID()] || !ids[b.node.ID()] {
		t.Fatalf("nodes %v, want %s and %s", ids, a.node.ID(), b.node.ID())
	}
}
