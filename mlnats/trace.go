package mlnats

import (
	"context"
	"net/http"

	"github.com/nats-io/nats.go"
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
