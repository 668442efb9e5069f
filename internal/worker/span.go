package worker

import (
	"context"

	"go.opentelemetry.io/otel/trace"
)

// HandlerSpans emits the handler (server) span of each request on the host, for the worker:
// started as the request is written, a child of the span in the caller's ctx (the client
// span), and ended as the answer is read. The request carries this span's context as its
// traceparent, so that Python continues it (its log records, and spans its code starts, such
// as GenAI spans, are its children) without an SDK span of its own per request: measured, a
// Python SDK span cost more than the whole untraced call (docs/OBSERVABILITY.md, "Cost").
type HandlerSpans interface {
	// StartHandler begins op's handler span; kind is the op's handler kind from the
	// worker's hello ("" for an op it does not declare) and pid the worker's. It returns
	// ctx unchanged and a nil span when tracing is off.
	StartHandler(ctx context.Context, op, kind string, pid int) (context.Context, trace.Span)
	// EndHandler ends it with the request's outcome: nil, the worker's error, a cancel, a
	// deadline or the worker's death.
	EndHandler(span trace.Span, err error)
	// StartBatch begins the handler span of a batch of n calls of op, which Python's batched
	// handler continues as one request: callers are the traced callers' spans (at least
	// one), which it links to and which link back to it. EndHandler ends it.
	StartBatch(op, kind string, pid, n int, callers []trace.Span) (context.Context, trace.Span)
}

// startHandlerSpan is the handler span of a request of op, when the session has HandlerSpans.
func (s *session) startHandlerSpan(ctx context.Context, op string) (context.Context, trace.Span) {
	if s.cfg.Spans == nil {
		return ctx, nil
	}
	return s.cfg.Spans.StartHandler(ctx, op, s.hello.Handlers[op], s.hello.Pid)
}

func (s *session) endHandlerSpan(span trace.Span, err error) {
	if span != nil {
		s.cfg.Spans.EndHandler(span, err)
	}
}

// startBatchSpan is the handler span of a batch of n calls of op whose traced callers are
// callers, when the session has HandlerSpans and a caller is traced.
func (s *session) startBatchSpan(ctx context.Context, op string, n int, callers []trace.Span) (context.Context, trace.Span) {
	if s.cfg.Spans == nil || len(callers) == 0 {
		return ctx, nil
	}
	bctx, span := s.cfg.Spans.StartBatch(op, s.hello.Handlers[op], s.hello.Pid, n, callers)
	if span == nil {
		return ctx, nil
	}
	// the batch's own ctx (its deadline, its cancel) with the batch span in it
	return trace.ContextWithSpan(ctx, trace.SpanFromContext(bctx)), span
}
