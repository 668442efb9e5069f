package mlbridge_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mlbridge/mlbridge"
)

// The pool's record about a call its worker took down with it (not idempotent: no retry)
// carries the call's trace_id and span_id, as the retry record does.
func TestTraceLogOfALostCall(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	logs := &logCapture{}
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.TracerProvider, c.Logger = 1, tp, slog.New(logs)
	})
	if _, err := p.Call(context.Background(), "exit", args("code", 3)); !errors.Is(err, mlbridge.ErrWorkerExited) {
		t.Fatalf("err %v, want ErrWorkerExited", err)
	}
	var gs tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == "exit" && s.SpanKind == trace.SpanKindClient {
			gs = s
		}
	}
	rec := logs.find("mlbridge: call lost with its worker")
	if rec == nil || rec["op"] != "exit" || rec["trace_id"] != gs.SpanContext.TraceID().String() || rec["span_id"] != gs.SpanContext.SpanID().String() {
		t.Errorf("record %v, want op exit and the ids of span %s/%s", rec, gs.SpanContext.TraceID(), gs.SpanContext.SpanID())
	}
	// the records about the worker's death carry the ids of the call it took down (its
	// handler span's, the one in flight)
	hs := handlerSpan(t, exp, gs)
	for _, msg := range []string{"mlbridge: worker exited", "mlbridge: worker died; replacing it"} {
		rec := waitRecord(t, logs, msg)
		if rec["trace_id"] != hs.SpanContext.TraceID().String() || rec["span_id"] != hs.SpanContext.SpanID().String() ||
			rec["trace_ids"] != "["+hs.SpanContext.TraceID().String()+"]" {
			t.Errorf("%q: %v, want the ids of the handler span %s/%s", msg, rec, hs.SpanContext.TraceID(), hs.SpanContext.SpanID())
		}
	}
	// a call that fails in its handler is the caller's to log
	logs.reset()
	_, _ = p.Call(context.Background(), "kind_sync", args("outcome", "raise"))
	if rec := logs.find("mlbridge: call lost with its worker"); rec != nil {
		t.Errorf("a handler's error logged as a lost call: %v", rec)
	}
}

// Two traced calls in flight when their worker dies: the records about the death carry both
// trace ids.
func TestTraceLogOfADeathWithCallsInFlight(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	logs := &logCapture{}
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.TracerProvider, c.Logger = 1, tp, slog.New(logs)
	})
	waiting := p.Submit(context.Background(), "sleep", args("seconds", 30.0))
	for p.Stats().Workers[0].InFlight == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := p.Call(context.Background(), "exit", args("code", 3)); !errors.Is(err, mlbridge.ErrWorkerExited) {
		t.Fatalf("err %v, want ErrWorkerExited", err)
	}
	if _, err := waiting.Wait(context.Background()); !errors.Is(err, mlbridge.ErrWorkerExited) {
		t.Fatalf("the sleeping call: err %v, want ErrWorkerExited", err)
	}
	var want []string
	for _, s := range exp.GetSpans() {
		if s.SpanKind == trace.SpanKindClient {
			want = append(want, s.SpanContext.TraceID().String())
		}
	}
	if len(want) != 2 {
		t.Fatalf("%d client spans, want 2", len(want))
	}
	for _, msg := range []string{"mlbridge: worker exited", "mlbridge: worker died; replacing it"} {
		rec := waitRecord(t, logs, msg)
		for _, id := range want {
			if !strings.Contains(rec["trace_ids"], id) {
				t.Errorf("%q: trace_ids %q lacks %s", msg, rec["trace_ids"], id)
			}
		}
		if rec["trace_id"] != "" {
			t.Errorf("%q: a single trace_id %s for two calls", msg, rec["trace_id"])
		}
	}
}

// waitRecord waits for the first record of msg (the pool logs a worker's death on its own
// goroutines).
func waitRecord(t *testing.T, logs *logCapture, msg string) map[string]string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if rec := logs.find(msg); rec != nil {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("no record %q", msg)
		}
	}
}
