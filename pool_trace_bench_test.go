package mlbridge

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkTraceSpanPath is what a sampled call pays on the Go side for its spans: the
// client span alone, and with the handler span under it (what a call through a worker emits),
// each started (with attributes) and ended into a batch span processor. Propagation to the
// worker is BenchmarkTraceOf (internal/worker).
func BenchmarkTraceSpanPath(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(discardExporter{}))
	defer tp.Shutdown(context.Background())
	ct := newCallTracer(tp, "bench", false)
	ctx := context.Background()
	info := &Info{Handlers: map[string]HandlerKind{"noop": "async"}}
	b.Run("client", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, span := ct.start(ctx, info, modeCall, "noop")
			ct.end(span, nil)
		}
	})
	b.Run("client+handler", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cctx, span := ct.start(ctx, info, modeCall, "noop")
			_, hspan := ct.StartHandler(cctx, "noop", "async", 1)
			ct.EndHandler(hspan, nil)
			ct.end(span, nil)
		}
	})
}
