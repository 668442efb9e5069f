package worker

import (
	"context"
	"encoding/hex"
	"log/slog"
	"slices"

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

// LostCalls are the span contexts of the traced calls that were in flight when the worker
// died (their handler spans, or the caller's spans), in no order; nil while it runs.
func (s *session) LostCalls() []trace.SpanContext {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lost
}

// LostCallAttrs are the attributes that join a record about a worker's death to the traces of
// the calls it took down: trace_id and span_id when there was one traced call (the usual
// join keys of a log backend), trace_ids (each once) whatever their number; none without.
func LostCallAttrs(lost []trace.SpanContext) []slog.Attr {
	if len(lost) == 0 {
		return nil
	}
	var attrs []slog.Attr
	if len(lost) == 1 {
		attrs = append(attrs, slog.String("trace_id", lost[0].TraceID().String()), slog.String("span_id", lost[0].SpanID().String()))
	}
	ids := make([]string, 0, len(lost))
	for _, sc := range lost {
		if id := sc.TraceID().String(); !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return append(attrs, slog.Any("trace_ids", ids))
}

// lostOf collects the span contexts of the traced calls among pending: each call's handler
// span, and for a batch of several traced callers their spans too (the batch span is in a
// trace of its own, which no caller's trace contains).
func lostOf(pending map[uint64]*Call) []trace.SpanContext {
	var lost []trace.SpanContext
	for _, c := range pending {
		if sc := trace.SpanContextFromContext(c.ctx); sc.IsValid() {
			lost = append(lost, sc)
		}
		lost = append(lost, c.linked...)
	}
	return lost
}
