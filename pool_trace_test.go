package mlbridge_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
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

// findWith is the first record of msg whose attribute key is value.
func (c *logCapture) findWith(msg, key, value string) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.recs {
		if r["msg"] == msg && r[key] == value {
			return r
		}
	}
	return nil
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

// handlerSpan finds the handler span of the client span cs: kind server, its child.
func handlerSpan(t *testing.T, exp *tracetest.InMemoryExporter, cs tracetest.SpanStub) tracetest.SpanStub {
	t.Helper()
	for _, s := range exp.GetSpans() {
		if s.SpanKind == trace.SpanKindServer && s.Parent.SpanID() == cs.SpanContext.SpanID() {
			if s.SpanContext.TraceID() != cs.SpanContext.TraceID() {
				t.Errorf("handler span %s in trace %s, its client span in %s", s.Name, s.SpanContext.TraceID(), cs.SpanContext.TraceID())
			}
			return s
		}
	}
	t.Fatalf("no handler span under the client span %s (%s)", cs.Name, cs.SpanContext.SpanID())
	return tracetest.SpanStub{}
}

func stubAttr(s tracetest.SpanStub, key string) attribute.Value {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// One trace from the Go caller into the Python handler, through real workers: the pool's
// client span is the parent of the handler span (both emitted by the host's SDK, here into an
// in-memory exporter), and the handler's Python code runs in that handler span — the ids
// current there, and on its log records, are the handler span's — for an async handler (eager
// and suspending), a sync one, both kinds of stream, a cancel and a deadline; the error cases
// end both spans with the error status and a cancel event; log records join the trace on both
// sides.
func TestTraceAcrossTheProcessBoundary(t *testing.T) {
	t.Run("spawned", func(t *testing.T) { testTraceAcross(t, false) })
	// workers forked from a zygote that imported the bridge
	t.Run("preload", func(t *testing.T) { testTraceAcross(t, true) })
}

func testTraceAcross(t *testing.T, preload bool) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	logs := &logCapture{}
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.TracerProvider, c.Preload = tp, preload
		c.Logger = slog.New(logs)
	})

	// goSpan finds the pool's last finished client span of op.
	goSpan := func(t *testing.T, op string) tracetest.SpanStub {
		t.Helper()
		spans := exp.GetSpans()
		for i := len(spans) - 1; i >= 0; i-- {
			if s := spans[i]; s.Name == op && s.SpanKind == trace.SpanKindClient {
				return s
			}
		}
		t.Fatalf("no Go span %q", op)
		return tracetest.SpanStub{}
	}
	pids := map[int64]bool{}
	for _, w := range p.Stats().Workers {
		pids[int64(w.Pid)] = true
	}
	// check finds the client and handler spans of the last call of op, and checks that the
	// Python code ran in the handler span: the ids it saw (seen, when it returned them) and
	// those of its log record ("trace ids of <op>").
	check := func(t *testing.T, op, kind string, seen map[string]any) (tracetest.SpanStub, tracetest.SpanStub) {
		t.Helper()
		gs := goSpan(t, op)
		if !gs.SpanContext.IsSampled() {
			t.Errorf("Go span %s not sampled", op)
		}
		hs := handlerSpan(t, exp, gs)
		if hs.Name != op || stubAttr(hs, "mlbridge.handler_kind").AsString() != kind || !pids[stubAttr(hs, "mlbridge.worker.pid").AsInt64()] {
			t.Errorf("handler span %q kind %q pid %d, want %q %q one of %v", hs.Name, stubAttr(hs, "mlbridge.handler_kind").AsString(),
				stubAttr(hs, "mlbridge.worker.pid").AsInt64(), op, kind, pids)
		}
		if hs.StartTime.Before(gs.StartTime) || hs.EndTime.After(gs.EndTime) {
			t.Errorf("handler span [%v, %v] not within its client span [%v, %v]", hs.StartTime, hs.EndTime, gs.StartTime, gs.EndTime)
		}
		want := map[string]any{"trace_id": hs.SpanContext.TraceID().String(), "span_id": hs.SpanContext.SpanID().String()}
		if seen != nil && (seen["trace_id"] != want["trace_id"] || seen["span_id"] != want["span_id"]) {
			t.Errorf("%s: Python saw %v, want the handler span's %v", op, seen, want)
		}
		var rec map[string]string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if rec = logs.findWith("trace ids of "+op, "span_id", want["span_id"].(string)); rec != nil || time.Now().After(deadline) {
				break
			}
		}
		if rec == nil || rec["trace_id"] != want["trace_id"] {
			t.Errorf("%s: no worker record with the handler span's ids %v (got %v)", op, want, rec)
		}
		return gs, hs
	}
	ok := func(t *testing.T, spans ...tracetest.SpanStub) {
		t.Helper()
		for _, s := range spans {
			if s.Status.Code == codes.Error {
				t.Errorf("error status on a successful call: %s %v", s.Name, s.Status)
			}
		}
	}
	failed := func(t *testing.T, category string, spans ...tracetest.SpanStub) {
		t.Helper()
		for _, s := range spans {
			if s.Status.Code != codes.Error || stubAttr(s, "error.type").AsString() != category {
				t.Errorf("%s (%v): status %v error.type %q, want an error %q", s.Name, s.SpanKind, s.Status, stubAttr(s, "error.type").AsString(), category)
			}
			if !slices.ContainsFunc(s.Events, func(e sdktrace.Event) bool { return e.Name == "mlbridge.cancel" }) {
				t.Errorf("%s (%v): no mlbridge.cancel event", s.Name, s.SpanKind)
			}
		}
	}

	t.Run("async", func(t *testing.T) {
		for _, suspend := range []bool{false, true} { // finishes eagerly; continues in a task
			seen := poolCall[map[string]any](t, p, "trace_ids", args("suspend", suspend))
			gs, hs := check(t, "trace_ids", "async", seen)
			ok(t, gs, hs)
		}
	})
	t.Run("sync", func(t *testing.T) {
		seen := poolCall[map[string]any](t, p, "sync_trace_ids", nil)
		gs, hs := check(t, "sync_trace_ids", "sync", seen)
		ok(t, gs, hs)
	})
	t.Run("stream", func(t *testing.T) {
		for op, kind := range map[string]string{"trace_ids_gen": "async_gen", "sync_trace_ids_gen": "sync_gen"} {
			var items []map[string]any
			for r, err := range p.Stream(context.Background(), op, nil) {
				if err != nil {
					t.Fatal(err)
				}
				v, err := mlbridge.Decode[map[string]any](r, nil)
				if err != nil {
					t.Fatal(err)
				}
				items = append(items, v)
			}
			if len(items) != 1 {
				t.Fatalf("%s: %d items", op, len(items))
			}
			gs, hs := check(t, op, kind, items[0])
			ok(t, gs, hs)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		if _, err := p.Call(ctx, "trace_ids", args("wait", true)); !errors.Is(err, mlbridge.ErrCancelled) {
			t.Fatalf("err %v, want ErrCancelled", err)
		}
		gs, hs := check(t, "trace_ids", "async", nil)
		failed(t, "cancelled", gs, hs)
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if _, err := p.Call(ctx, "sync_trace_ids", args("seconds", 1.0)); !errors.Is(err, mlbridge.ErrTimeout) {
			t.Fatalf("err %v, want ErrTimeout", err)
		}
		gs, hs := check(t, "sync_trace_ids", "sync", nil)
		failed(t, "timeout", gs, hs)
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
// and so are their handler spans (a define sent straight to a worker included).
func TestTraceTypedOperation(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Bridge, c.Size, c.TracerProvider = dspyBridge, 1, tp
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
	byName := map[string]tracetest.SpanStub{} // the operations' and calls' spans
	for _, s := range exp.GetSpans() {
		if s.SpanKind != trace.SpanKindServer {
			byName[s.Name] = s
		}
	}
	op, call := byName["dspy.ExecuteProgram"], byName["execute"]
	if !op.SpanContext.IsValid() || call.Parent.SpanID() != op.SpanContext.SpanID() || call.SpanContext.TraceID() != op.SpanContext.TraceID() {
		t.Fatalf("execute span %v is not a child of dspy.ExecuteProgram %v", call.Parent, op.SpanContext)
	}
	if hs := handlerSpan(t, exp, call); hs.Name != "execute" {
		t.Errorf("handler span %q under the execute call", hs.Name)
	}
	// CreateProgram's describe call builds the program first, with a define on the worker;
	// ConfigureLM's global definition reaches the worker as a define sent straight to it.
	if d, c := byName["describe"], byName["dspy.CreateProgram"]; d.Parent.SpanID() != c.SpanContext.SpanID() {
		t.Errorf("describe span %v is not a child of dspy.CreateProgram %v", d.Parent, c.SpanContext)
	} else if hs := handlerSpan(t, exp, d); hs.Name != "define_resource" {
		t.Errorf("handler span %q under the describe call", hs.Name)
	}
	if hs := handlerSpan(t, exp, byName["dspy.ConfigureLM"]); hs.Name != "define_resource" {
		t.Errorf("handler span %q under dspy.ConfigureLM", hs.Name)
	}
}

// A single Bridge traces its calls the same way: Call, Submit (the span ends with the call,
// waited for or not) and Stream, each the parent of its handler span.
func TestTraceBridge(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	b := open(t, func(c *mlbridge.Config) { c.TracerProvider = tp })
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
	clients := func() []tracetest.SpanStub {
		return slices.DeleteFunc(exp.GetSpans(), func(s tracetest.SpanStub) bool { return s.SpanKind != trace.SpanKindClient })
	}
	for deadline := time.Now().Add(10 * time.Second); len(clients()) < len(want) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // Submit's span ends on its own goroutine
	}
	for _, s := range clients() {
		mode := ""
		for _, kv := range s.Attributes {
			if kv.Key == "mlbridge.mode" {
				mode = kv.Value.AsString()
			}
		}
		if want[s.Name] != mode {
			t.Errorf("span %s: mode %q, want %q", s.Name, mode, want[s.Name])
		}
		if hs := handlerSpan(t, exp, s); hs.Name != s.Name {
			t.Errorf("handler span %q under %q", hs.Name, s.Name)
		}
		delete(want, s.Name)
	}
	if len(want) != 0 {
		t.Errorf("no Go span for %v", want)
	}
}

// The pool's own requests (a new worker's health check, the last one as it stops) start no
// spans: every span is a call's, a client span and its handler span.
func TestTracePoolRequestsStartNoTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.TracerProvider, c.Size = tp, 1 })
	poolCall[any](t, p, "echo", args("value", 1))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	var kinds []trace.SpanKind
	for _, s := range exp.GetSpans() {
		if s.Name != "echo" {
			t.Errorf("span %q (%v): not a call's", s.Name, s.SpanKind)
		}
		kinds = append(kinds, s.SpanKind)
	}
	if !slices.Equal(kinds, []trace.SpanKind{trace.SpanKindServer, trace.SpanKindClient}) {
		t.Errorf("spans of kinds %v, want the call's handler and client spans", kinds)
	}
}
