package worker

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkTraceOf is the trace context a sampled call carries to the worker, formatted.
func BenchmarkTraceOf(b *testing.B) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5}, TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	b.ReportAllocs()
	for b.Loop() {
		if traceOf(ctx).Parent == "" {
			b.Fatal("no traceparent")
		}
	}
}

// traceOf formats what the standard W3C propagator would.
func TestTraceOfMatchesThePropagator(t *testing.T) {
	ts, _ := trace.ParseTraceState("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
	for _, sc := range []trace.SpanContext{
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xab, 1, 2, 0xff}, SpanID: trace.SpanID{4, 0xfe, 5}, TraceFlags: trace.FlagsSampled}),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9}, SpanID: trace.SpanID{7}, TraceState: ts}),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9}, SpanID: trace.SpanID{7}, TraceFlags: 0xff, Remote: true}),
	} {
		ctx := trace.ContextWithSpanContext(context.Background(), sc)
		c := propagation.MapCarrier{}
		propagation.TraceContext{}.Inject(ctx, c)
		if got := traceOf(ctx); got.Parent != c["traceparent"] || got.State != c["tracestate"] {
			t.Errorf("traceOf = %+v, the propagator: %v", got, c)
		}
	}
	if got := traceOf(context.Background()); got.Parent != "" || got.State != "" {
		t.Errorf("untraced: %+v", got)
	}
}
