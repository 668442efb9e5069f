package mlbridge_test

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	otlptrace "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/dspy"
)

// otlpReceiver is an OTLP/HTTP trace endpoint on loopback, as a collector would be: the
// workers' exporter posts protobuf ExportTraceServiceRequests to /v1/traces.
type otlpReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []*otlptrace.Span
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil || req.URL.Path != "/v1/traces" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		// An ExportTraceServiceRequest has TracesData's wire shape (field 1: resource_spans):
		// decoding it as TracesData keeps the collector's gRPC packages out of the build.
		var data otlptrace.TracesData
		if err := proto.Unmarshal(body, &data); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range data.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				r.spans = append(r.spans, ss.Spans...)
			}
		}
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK) // an empty ExportTraceServiceResponse
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// server waits for the worker's span of the Go span sc: same trace, sc as its parent.
func (r *otlpReceiver) server(t *testing.T, sc trace.SpanContext) *otlptrace.Span {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.mu.Lock()
		for _, s := range r.spans {
			if hex.EncodeToString(s.TraceId) == sc.TraceID().String() && hex.EncodeToString(s.ParentSpanId) == sc.SpanID().String() {
				r.mu.Unlock()
				return s
			}
		}
		n := len(r.spans)
		r.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no worker span with parent %s in trace %s (%d spans received)", sc.SpanID(), sc.TraceID(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func attr(s *otlptrace.Span, key string) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

func hasEvent(s *otlptrace.Span, name string) bool {
	for _, e := range s.Events {
		if e.Name == name {
			return true
		}
	}
	return false
}

// logCapture keeps slog records with their attributes.
type logCapture struct {
	mu   sync.Mutex
	recs []map[string]string
}

func (c *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCapture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *logCapture) WithGroup(string) slog.Handler            { return c }
func (c *logCapture) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"msg": r.Message}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	c.mu.Lock()
	c.recs = append(c.recs, m)
	c.mu.Unlock()
	return nil
}

// reset forgets every record so far; the pool's goroutines may be logging meanwhile.
func (c *logCapture) reset() {
	c.mu.Lock()
	c.recs = nil
	c.mu.Unlock()
}

func (c *logCapture) find(msg string) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.recs {
		if r["msg"] == msg {
			return r
		}
	}
	return nil
}

// One trace from the Go caller into the Python handler, through real workers: the pool's
// client span (Go SDK, in-memory exporter) is the parent of the worker's handler span
// (Python SDK, OTLP/HTTP to a loopback receiver), for an async handler (eager and suspending),
// a sync one, both kinds of stream, a cancel and a deadline; the error cases end with the
// error status and a cancel event on both sides; log records join the trace on both sides.
func TestTraceAcrossTheProcessBoundary(t *testing.T) {
	t.Run("spawned", func(t *testing.T) { testTraceAcross(t, false) })
	// workers forked from a zygote that imported the bridge: the SDK is set up in each worker
	t.Run("preload", func(t *testing.T) { testTraceAcross(t, true) })
}

func testTraceAcross(t *testing.T, preload bool) {
	recv := newOTLPReceiver(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	logs := &logCapture{}
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.TracerProvider, c.Preload = tp, preload
		c.Logger = slog.New(logs)
		c.Env = append(c.Env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="+recv.srv.URL+"/v1/traces",
			"OTEL_BSP_SCHEDULE_DELAY=20", "OTEL_SERVICE_NAME=mlbridge-test-worker")
	})

	// goSpan finds the pool's finished client span of op.
	goSpan := func(t *testing.T, op string) tracetest.SpanStub {
		t.Helper()
		for _, s := range exp.GetSpans() {
			if s.Name == op {
				return s
			}
		}
		t.Fatalf("no Go span %q", op)
		return tracetest.SpanStub{}
	}
	check := func(t *testing.T, op, kind string) (tracetest.SpanStub, *otlptrace.Span) {
		t.Helper()
		gs := goSpan(t, op)
		if gs.SpanKind != trace.SpanKindClient || !gs.SpanContext.IsSampled() {
			t.Errorf("Go span %s: kind %v sampled %v", op, gs.SpanKind, gs.SpanContext.IsSampled())
		}
		ps := recv.server(t, gs.SpanContext)
		if ps.Name != op || ps.Kind != otlptrace.Span_SPAN_KIND_SERVER || attr(ps, "mlbridge.handler_kind") != kind {
			t.Errorf("worker span %q kind %v handler kind %q, want %q SERVER %q", ps.Name, ps.Kind, attr(ps, "mlbridge.handler_kind"), op, kind)
		}
		return gs, ps
	}
	ok := func(t *testing.T, gs tracetest.SpanStub, ps *otlptrace.Span) {
		t.Helper()
		if gs.Status.Code == codes.Error || ps.Status.GetCode() == otlptrace.Status_STATUS_CODE_ERROR {
			t.Errorf("error status on a successful call: Go %v, worker %v", gs.Status, ps.Status)
		}
	}
	failed := func(t *testing.T, gs tracetest.SpanStub, ps *otlptrace.Span, category string) {
		t.Helper()
		if gs.Status.Code != codes.Error || ps.Status.GetCode() != otlptrace.Status_STATUS_CODE_ERROR {
			t.Errorf("status: Go %v, worker %v; want errors", gs.Status, ps.Status)
		}
		goType := ""
		for _, kv := range gs.Attributes {
			if kv.Key == "error.type" {
				goType = kv.Value.AsString()
			}
		}
		if goType != category || attr(ps, "error.type") != category {
			t.Errorf("error.type: Go %q, worker %q; want %q", goType, attr(ps, "error.type"), category)
		}
		goEvent := false
		for _, e := range gs.Events {
			goEvent = goEvent || e.Name == "mlbridge.cancel"
		}
		if !goEvent || !hasEvent(ps, "mlbridge.cancel") {
			t.Errorf("mlbridge.cancel event: Go %v, worker %v", goEvent, hasEvent(ps, "mlbridge.cancel"))
		}
	}

	t.Run("async", func(t *testing.T) {
		poolCall[any](t, p, "echo", args("value", 1))                        // finishes eagerly
		poolCall[any](t, p, "sleep_echo", args("value", 1, "seconds", 0.01)) // continues in a task
		for _, op := range []string{"echo", "sleep_echo"} {
			gs, ps := check(t, op, "async")
			ok(t, gs, ps)
		}
	})
	t.Run("sync", func(t *testing.T) {
		poolCall[any](t, p, "sync_echo", args("value", 1))
		gs, ps := check(t, "sync_echo", "sync")
		ok(t, gs, ps)
	})
	t.Run("stream", func(t *testing.T) {
		for _, op := range []string{"kind_async_gen", "kind_sync_gen"} {
			n := 0
			for _, err := range p.Stream(context.Background(), op, args("outcome", "ok")) {
				if err != nil {
					t.Fatal(err)
				}
				n++
			}
			if n != 1 {
				t.Fatalf("%s: %d items", op, n)
			}
			gs, ps := check(t, op, map[string]string{"kind_async_gen": "async_gen", "kind_sync_gen": "sync_gen"}[op])
			ok(t, gs, ps)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		if _, err := p.Call(ctx, "kind_async", args("outcome", "wait")); !errors.Is(err, mlbridge.ErrCancelled) {
			t.Fatalf("err %v, want ErrCancelled", err)
		}
		gs, ps := check(t, "kind_async", "async")
		failed(t, gs, ps, "cancelled")
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if _, err := p.Call(ctx, "sync_sleep", args("seconds", 1.0)); !errors.Is(err, mlbridge.ErrTimeout) {
			t.Fatalf("err %v, want ErrTimeout", err)
		}
		gs, ps := check(t, "sync_sleep", "sync")
		failed(t, gs, ps, "timeout")
	})
	t.Run("logs", func(t *testing.T) {
		poolCall[bool](t, p, "log_record", args("level", "warning", "msg", "inside a traced call"))
		gs, ps := check(t, "log_record", "sync")
		var rec map[string]string
		for deadline := time.Now().Add(10 * time.Second); rec == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			rec = logs.find("inside a traced call")
		}
		if rec == nil {
			t.Fatal("the worker's record did not reach the pool's logger")
		}
		if rec["trace_id"] != gs.SpanContext.TraceID().String() || rec["span_id"] != hex.EncodeToString(ps.SpanId) {
			t.Errorf("record ids %s/%s, want the handler span's %s/%x", rec["trace_id"], rec["span_id"], gs.SpanContext.TraceID(), ps.SpanId)
		}
	})
	t.Run("retry-log", func(t *testing.T) {
		// the worker dies during an idempotent call: the pool's record about the retry
		// carries the call's ids (the retried call kills the other worker too, and fails)
		_, _ = p.Call(context.Background(), "exit", args("code", 3), mlbridge.Idempotent())
		gs := goSpan(t, "exit")
		rec := logs.find("mlbridge: worker died during an idempotent call; retrying on another")
		if rec == nil || rec["trace_id"] != gs.SpanContext.TraceID().String() || rec["span_id"] != gs.SpanContext.SpanID().String() {
			t.Errorf("retry record %v, want the ids of span %s", rec, gs.SpanContext.SpanID())
		}
		if gs.Status.Code != codes.Error {
			t.Errorf("Go span status %v", gs.Status)
		}
	})
}

// With no provider installed (the global default), a call records nothing and sends no trace
// context; a span context the caller's ctx holds is still forwarded.
func TestTraceNoProvider(t *testing.T) {
	p := openPool(t)
	poolCall[any](t, p, "echo", args("value", 1))
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	if _, err := p.Call(ctx, "echo", args("value", 1)); err != nil {
		t.Fatal(err)
	}
}

// A typed client's operation is a span of its own: the pool calls it makes are its children,
// and so are their worker spans (a define sent straight to a worker included).
func TestTraceTypedOperation(t *testing.T) {
	recv := newOTLPReceiver(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Bridge, c.Size, c.TracerProvider = dspyBridge, 1, tp
		c.Env = append(c.Env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="+recv.srv.URL+"/v1/traces", "OTEL_BSP_SCHEDULE_DELAY=20")
	})
	ctx := context.Background()
	client := dspy.New(p)
	if err := client.ConfigureLM(ctx, dspy.LMConfig{Provider: "dummy", Answers: []map[string]any{{"answer": "Paris"}}}); err != nil {
		t.Fatal(err)
	}
	id, err := client.CreateProgram(ctx, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := client.ExecuteProgram(ctx, id, map[string]any{"question": "capital of France?"}); err != nil || out["answer"] != "Paris" {
		t.Fatalf("execute: %v %v", out, err)
	}
	byName := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		byName[s.Name] = s
	}
	op, call := byName["dspy.ExecuteProgram"], byName["execute"]
	if !op.SpanContext.IsValid() || call.Parent.SpanID() != op.SpanContext.SpanID() || call.SpanContext.TraceID() != op.SpanContext.TraceID() {
		t.Fatalf("execute span %v is not a child of dspy.ExecuteProgram %v", call.Parent, op.SpanContext)
	}
	if ps := recv.server(t, call.SpanContext); ps.Name != "execute" {
		t.Errorf("worker span %q under the execute call", ps.Name)
	}
	// CreateProgram's describe call builds the program first, with a define on the worker;
	// ConfigureLM's global definition reaches the worker as a define sent straight to it.
	if d, c := byName["describe"], byName["dspy.CreateProgram"]; d.Parent.SpanID() != c.SpanContext.SpanID() {
		t.Errorf("describe span %v is not a child of dspy.CreateProgram %v", d.Parent, c.SpanContext)
	} else if ps := recv.server(t, d.SpanContext); ps.Name != "define_resource" {
		t.Errorf("worker span %q under the describe call", ps.Name)
	}
	if ps := recv.server(t, byName["dspy.ConfigureLM"].SpanContext); ps.Name != "define_resource" {
		t.Errorf("worker span %q under dspy.ConfigureLM", ps.Name)
	}
}

// A single Bridge traces its calls the same way: Call, Submit (the span ends with the call,
// waited for or not) and Stream, each the parent of its worker span.
func TestTraceBridge(t *testing.T) {
	recv := newOTLPReceiver(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	b := open(t, func(c *mlbridge.Config) {
		c.TracerProvider = tp
		c.Env = append(c.Env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="+recv.srv.URL+"/v1/traces", "OTEL_BSP_SCHEDULE_DELAY=20")
	})
	ctx := context.Background()
	if _, err := b.Call(ctx, "echo", args("value", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Submit(ctx, "sync_echo", args("value", 2)).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	for _, err := range b.Stream(ctx, "kind_async_gen", args("outcome", "ok")) {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"echo": "call", "sync_echo": "submit", "kind_async_gen": "stream"}
	for deadline := time.Now().Add(10 * time.Second); len(exp.GetSpans()) < len(want) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // Submit's span ends on its own goroutine
	}
	for _, s := range exp.GetSpans() {
		mode := ""
		for _, kv := range s.Attributes {
			if kv.Key == "mlbridge.mode" {
				mode = kv.Value.AsString()
			}
		}
		if want[s.Name] != mode {
			t.Errorf("span %s: mode %q, want %q", s.Name, mode, want[s.Name])
		}
		if ps := recv.server(t, s.SpanContext); ps.Name != s.Name {
			t.Errorf("worker span %q under %q", ps.Name, s.Name)
		}
		delete(want, s.Name)
	}
	if len(want) != 0 {
		t.Errorf("no Go span for %v", want)
	}
}
