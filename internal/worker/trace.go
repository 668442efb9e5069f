package worker

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mlbridge/mlbridge/internal/wire"
)

// traceCarrier receives the W3C fields of one request (propagation.TextMapCarrier).
type traceCarrier wire.Trace

func (c *traceCarrier) Get(key string) string {
	switch key {
	case "traceparent":
		return c.Parent
	case "tracestate":
		return c.State
	}
	return ""
}

func (c *traceCarrier) Set(key, value string) {
	switch key {
	case "traceparent":
		c.Parent = value
	case "tracestate":
		c.State = value
	}
}

func (c *traceCarrier) Keys() []string { return []string{"traceparent", "tracestate"} }

// traceOf is the trace context a request carries to Python: the span in ctx (the pool's client
// span, or the caller's own), formatted by the standard W3C propagator. Untraced calls — no
// valid span context — return at the first check, allocating nothing.
func traceOf(ctx context.Context) wire.Trace {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return wire.Trace{}
	}
	var c traceCarrier
	propagation.TraceContext{}.Inject(ctx, &c)
	return wire.Trace(c)
}
