package mlnats

import (
	"context"
	"net/http"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// NATS headers have http.Header's shape, so the W3C trace context travels in them as it
// would over HTTP: the client's span is the parent of the node's call span, and the pool
// carries it on into Python.

func inject(ctx context.Context, p propagation.TextMapPropagator, h nats.Header) {
	p.Inject(ctx, propagation.HeaderCarrier(http.Header(h)))
}

func extract(ctx context.Context, p propagation.TextMapPropagator, h nats.Header) context.Context {
	return p.Extract(ctx, propagation.HeaderCarrier(http.Header(h)))
}

// globalOrW3C is the propagator of a Remote or Node configured with none: otel's global
// propagator once the application has set one, W3C TraceContext until then. otel's default
// global propagator propagates nothing, so without this fallback a trace would stop at every
// NATS hop unless each program (`mlbridge serve` included) remembered to set one. It looks
// at the global on every use, so a propagator set after Dial or NewNode still counts.
type globalOrW3C struct{}

func (globalOrW3C) current() propagation.TextMapPropagator {
	if p := otel.GetTextMapPropagator(); len(p.Fields()) > 0 {
		return p
	}
	return propagation.TraceContext{}
}

func (g globalOrW3C) Inject(ctx context.Context, c propagation.TextMapCarrier) {
	g.current().Inject(ctx, c)
}

func (g globalOrW3C) Extract(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	return g.current().Extract(ctx, c)
}

func (g globalOrW3C) Fields() []string { return g.current().Fields() }
