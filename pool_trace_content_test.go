package mlbridge_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mlbridge/mlbridge"
)

// A handler's exception message may quote the call's input (a prompt): the client and
// handler spans of a failed call carry its class and category, and its text only when
// content capture is switched on (mlbridge.CaptureContentEnv, the GenAI switch, in the
// workers' environment) — through a real worker, both ways.
func TestTraceErrorTextOnlyWithContentCapture(t *testing.T) {
	const secret = "the prompt was: my card is 4242"
	for _, capture := range []bool{false, true} {
		t.Run(fmt.Sprintf("capture=%v", capture), func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			p := openPool(t, func(c *mlbridge.PoolConfig) {
				c.Size, c.TracerProvider = 1, tp
				if capture {
					c.Env = append(c.Env, mlbridge.CaptureContentEnv+"=true")
				}
			})
			if _, err := p.Call(context.Background(), "fail", args("type", "ValueError", "message", secret)); err == nil || !strings.Contains(err.Error(), secret) {
				t.Fatalf("err %v: the caller gets the whole error either way", err)
			}
			var spans []tracetest.SpanStub
			for _, s := range exp.GetSpans() {
				if s.Name == "fail" {
					spans = append(spans, s)
				}
			}
			if len(spans) != 2 {
				t.Fatalf("%d spans of the call, want its client and handler spans", len(spans))
			}
			for _, s := range spans {
				text := fmt.Sprint(s.Status, s.Attributes, s.Events)
				if got := strings.Contains(text, secret); got != capture {
					t.Errorf("%v span: message text recorded %v with capture %v: %s", s.SpanKind, got, capture, text)
				}
				if s.Status.Code.String() != "Error" || stubAttr(s, "error.type").AsString() == "" {
					t.Errorf("%v span: status %v, error.type %q", s.SpanKind, s.Status, stubAttr(s, "error.type").AsString())
				}
				if !capture && (s.Status.Description != "ValueError" || !hasExceptionType(s, "ValueError")) {
					t.Errorf("%v span: status %q, events %v; want the class ValueError on both", s.SpanKind, s.Status.Description, s.Events)
				}
			}
			if spans[0].SpanKind != trace.SpanKindServer || spans[1].SpanKind != trace.SpanKindClient {
				t.Errorf("spans ended in the order %v, %v; want the handler span first", spans[0].SpanKind, spans[1].SpanKind)
			}
		})
	}
}

func hasExceptionType(s tracetest.SpanStub, typ string) bool {
	for _, e := range s.Events {
		for _, kv := range e.Attributes {
			if e.Name == "exception" && kv.Key == "exception.type" && kv.Value.AsString() == typ {
				return true
			}
		}
	}
	return false
}
