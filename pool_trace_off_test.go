package mlbridge

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"
)

// With no provider (the global default) or OpenTelemetry's no-op one, a call starts no span
// and allocates nothing for tracing: the untraced hot path is the one from before tracing.
func TestTraceOffAllocatesNothing(t *testing.T) {
	if !tracingOff(otel.GetTracerProvider()) {
		t.Fatal("the global default provider is taken for a recording one")
	}
	for name, tp := range map[string]*callTracer{
		"global default": newCallTracer(nil, "b"),
		"noop":           newCallTracer(noop.NewTracerProvider(), "b"),
	} {
		ctx := context.Background()
		if n := testing.AllocsPerRun(1000, func() {
			c, span := tp.start(ctx, "op", modeCall, "op")
			endSpan(span, nil)
			if span != nil || c != ctx {
				t.Fatalf("%s: a span was started", name)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per call", name, n)
		}
	}
}
