package mlbridge_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

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
		if s.Name == "exit" {
			gs = s
		}
	}
	rec := logs.find("mlbridge: call lost with its worker")
	if rec == nil || rec["op"] != "exit" || rec["trace_id"] != gs.SpanContext.TraceID().String() || rec["span_id"] != gs.SpanContext.SpanID().String() {
		t.Errorf("record %v, want op exit and the ids of span %s/%s", rec, gs.SpanContext.TraceID(), gs.SpanContext.SpanID())
	}
	// a call that fails in its handler is the caller's to log
	logs.reset()
	_, _ = p.Call(context.Background(), "kind_sync", args("outcome", "raise"))
	if rec := logs.find("mlbridge: call lost with its worker"); rec != nil {
		t.Errorf("a handler's error logged as a lost call: %v", rec)
	}
}
