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
		"global default": newCallTracer(nil, "b", false),
		"noop":           newCallTracer(noop.NewTracerProvider(), "b", false),
	} {
		ctx := context.Background()
		if n := testing.AllocsPerRun(1000, func() {
			c, span := tp.start(ctx, nil, modeCall, "op")
			hc, hspan := tp.StartHandler(c, "op", "async", 1)
			tp.EndHandler(hspan, nil)
			tp.end(span, nil)
			if span != nil || hspan != nil || c != ctx || hc != ctx {
				t.Fatalf("%s: a span was started", name)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per call", name, n)
		}
	}
}

// Span names are bounded like the stats: an op the bridge does not declare is "(unknown)".
func TestSpanOpIsBounded(t *testing.T) {
	info := &Info{Handlers: map[string]HandlerKind{"echo": "async"}}
	for op, want := range map[string]string{"echo": "echo", "junk-from-a-client-1234": UnknownOp} {
		if got := spanOp(info, op); got != want {
			t.Errorf("spanOp(%q) = %q, want %q", op, got, want)
		}
	}
	if got := spanOp(nil, "echo"); got != UnknownOp {
		t.Errorf("without a handshake: %q", got)
	}
}
