package mlbridge

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkTraceSpanPath is what a sampled call pays on the Go side for its two spans, the
// client span and the handler span under it: start (with attributes) and end into a batch
// span processor. Propagation to the worker is BenchmarkTraceOf (internal/worker).
func BenchmarkTraceSpanPath(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(discardExporter{}))
	defer tp.Shutdown(context.Background())
	ct := newCallTracer(tp, "bench", false)
	ctx := context.Background()
	info := &Info{Handlers: map[string]HandlerKind{"noop": "async"}}
	b.ReportAllocs()
	for b.Loop() {
		cctx, span := ct.start(ctx, info, modeCall, "noop")
		_, hspan := ct.StartHandler(cctx, "noop", "async", 1)
		ct.EndHandler(hspan, nil)
		ct.end(span, nil)
	}
}
