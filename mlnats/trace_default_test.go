package mlnats_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
)

// tracedCall serves a traced pool on a node configured by nodeProp and calls "noop" from a
// client span through a Remote configured by clientProp (nil: the default); it returns the
// client span and every span recorded.
func tracedCall(t *testing.T, nodeProp, clientProp propagation.TextMapPropagator) (tracetest.SpanStub, []tracetest.SpanStub) {
	t.Helper()
	e := embedded(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.TracerProvider = tp })
	n, err := mlnats.NewNode(connect(t, e), mlnats.NodeConfig{
		Adapters: map[string]mlbridge.Adapter{"echo": p}, Logger: quiet, Propagator: nodeProp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	r := dial(t, e, mlnats.Options{Propagator: clientProp})
	ctx, span := tp.Tracer("client").Start(context.Background(), "client-op")
	if _, err := r.Call(ctx, "noop", nil); err != nil {
		t.Fatal(err)
	}
	span.End()
	spans := exp.GetSpans()
	for _, s := range spans {
		if s.SpanContext.SpanID() == span.SpanContext().SpanID() {
			return s, spans
		}
	}
	t.Fatal("the client span was not recorded")
	return tracetest.SpanStub{}, nil
}

// TestTraceWithoutPropagator: neither the Remote nor the Node is given a propagator and the
// application set no global one (otel's default propagates nothing): W3C TraceContext is the
// default, so client span → the node's pool span → the Python handler's span are one trace.
func TestTraceWithoutPropagator(t *testing.T) {
	if f := otel.GetTextMapPropagator().Fields(); len(f) != 0 {
		t.Fatalf("this test needs otel's default global propagator; one propagating %v is set", f)
	}
	client, spans := tracedCall(t, nil, nil)
	var node, handler *tracetest.SpanStub
	for i, s := range spans {
		if s.Name == "noop" && s.SpanKind == trace.SpanKindClient {
			node = &spans[i]
		}
	}
	if node == nil {
		t.Fatalf("no node span among %d", len(spans))
	}
	for i, s := range spans {
		if s.SpanKind == trace.SpanKindServer && s.Parent.SpanID() == node.SpanContext.SpanID() {
			handler = &spans[i]
		}
	}
	if handler == nil {
		t.Fatalf("no Python handler span under the node span among %d", len(spans))
	}
	want := client.SpanContext.TraceID()
	if node.Parent.SpanID() != client.SpanContext.SpanID() || node.SpanContext.TraceID() != want || handler.SpanContext.TraceID() != want {
		t.Fatalf("not one trace: client %v; node %v (parent %v); handler %v", client.SpanContext, node.SpanContext, node.Parent, handler.SpanContext)
	}
	t.Logf("one trace %s: client %s -> node %s -> handler %s", want, client.SpanContext.SpanID(), node.SpanContext.SpanID(), handler.SpanContext.SpanID())
}

// TestTraceExplicitPropagator: a propagator given explicitly replaces the default — here one
// that carries only baggage, so the node's span starts a trace of its own.
func TestTraceExplicitPropagator(t *testing.T) {
	client, spans := tracedCall(t, propagation.Baggage{}, propagation.Baggage{})
	for _, s := range spans {
		if s.Name == "noop" && s.SpanKind == trace.SpanKindClient {
			if s.SpanContext.TraceID() == client.SpanContext.TraceID() {
				t.Fatalf("the trace crossed with a baggage-only propagator: the explicit one was not used")
			}
			return
		}
	}
	t.Fatalf("no node span among %d", len(spans))
}
