package worker

import (
	"context"
	"encoding/hex"

	"go.opentelemetry.io/otel/trace"

	"github.com/mlbridge/mlbridge/internal/wire"
)

// traceOf is the trace context a request carries to Python: the span in ctx (the pool's client
// span, or the caller's own), as W3C traceparent and tracestate — formatted here, as the
// standard propagator (propagation.TraceContext) would, in one allocation rather than its
// carrier's round trip. Untraced calls — no valid span context — return at the first check,
// allocating nothing.
func traceOf(ctx context.Context) wire.Trace {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return wire.Trace{}
	}
	// version 00: "00-" trace id "-" span id "-" flags (the spec's: sampled and random)
	var b [55]byte
	b[0], b[1], b[2] = '0', '0', '-'
	tid, sid := sc.TraceID(), sc.SpanID()
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52], b[53] = '-', '0'
	b[54] = '0' + byte(sc.TraceFlags()&(trace.FlagsSampled|trace.FlagsRandom))
	t := wire.Trace{Parent: string(b[:])}
	if ts := sc.TraceState(); ts.Len() > 0 {
		t.State = ts.String()
	}
	return t
}
