package mlbridge_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	otlptrace "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/dspy"
)

// wait returns the first received span for which match holds, waiting for the worker's
// exporter (it sends in batches).
func (r *otlpReceiver) wait(t *testing.T, what string, match func(*otlptrace.Span) bool) *otlptrace.Span {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r.mu.Lock()
		for _, s := range r.spans {
			if match(s) {
				r.mu.Unlock()
				return s
			}
		}
		n := len(r.spans)
		r.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no worker span %s (%d spans received)", what, n)
		}
	}
}

func intAttr(s *otlptrace.Span, key string) (int64, bool) {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.GetIntValue(), true
		}
	}
	return 0, false
}

// One DSPy ExecuteProgram on the local model (llama.cpp in the worker): the worker exports
// (OTLP) a GenAI client span for the LM call, a child of the host's handler span in the
// caller's trace, with the model, the provider and the token usage llama.cpp counted. The prompt is
// not on it (content capture is off by default). The pool's record of the LM definition
// carries the ConfigureLM operation's trace ids.
func TestGenAISpanOfALocalModelCall(t *testing.T) {
	recv := newOTLPReceiver(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	logs := &logCapture{}
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Bridge, c.Size, c.TracerProvider, c.Logger = dspyBridge, 1, tp, slog.New(logs)
		c.Env = append(c.Env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="+recv.srv.URL+"/v1/traces", "OTEL_BSP_SCHEDULE_DELAY=20")
	})
	ctx := context.Background()
	client := dspy.New(p)
	if err := client.ConfigureLM(ctx, dspy.LMConfig{Provider: "local", MaxTokens: 32}); err != nil {
		t.Fatal(err)
	}
	id, err := client.CreateProgram(ctx, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	const question = "What is the capital of France?"
	if _, err := client.ExecuteProgram(ctx, id, map[string]any{"question": question}); err != nil {
		t.Fatal(err)
	}
	var call, configure tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.SpanKind == trace.SpanKindServer {
			continue // the handler spans
		}
		switch s.Name {
		case "execute":
			call = s
		case "dspy.ConfigureLM":
			configure = s
		}
	}
	// the pool's record of the LM's global definition joins the ConfigureLM operation's trace
	if rec := logs.find("mlbridge: global definition applied"); rec == nil || rec["trace_id"] != configure.SpanContext.TraceID().String() ||
		rec["span_id"] != configure.SpanContext.SpanID().String() {
		t.Errorf("definition record %v, want the ids of dspy.ConfigureLM %s", rec, configure.SpanContext.SpanID())
	}
	if !call.SpanContext.IsValid() {
		t.Fatal("no Go span of the execute call")
	}
	handler := handlerSpan(t, exp, call) // the host's, the Python code's current span
	hid, tid := handler.SpanContext.SpanID(), handler.SpanContext.TraceID()
	lm := recv.wait(t, "with gen_ai.operation.name under the handler span", func(s *otlptrace.Span) bool {
		return bytes.Equal(s.ParentSpanId, hid[:]) && attr(s, "gen_ai.operation.name") != ""
	})
	if !bytes.Equal(lm.TraceId, tid[:]) {
		t.Errorf("GenAI span in trace %x, handler span in %s", lm.TraceId, tid)
	}
	if lm.Kind != otlptrace.Span_SPAN_KIND_CLIENT || lm.Name != "chat smollm2-135m-instruct" {
		t.Errorf("GenAI span %q kind %v, want %q CLIENT", lm.Name, lm.Kind, "chat smollm2-135m-instruct")
	}
	for key, want := range map[string]string{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "llama_cpp",
		"gen_ai.request.model": "smollm2-135m-instruct", "gen_ai.response.model": "smollm2-135m-instruct"} {
		if got := attr(lm, key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	in, _ := intAttr(lm, "gen_ai.usage.input_tokens")
	out, _ := intAttr(lm, "gen_ai.usage.output_tokens")
	if max, _ := intAttr(lm, "gen_ai.request.max_tokens"); in <= 0 || out <= 0 || out > max || max != 32 {
		t.Errorf("usage: input %d output %d tokens (max_tokens %d)", in, out, max)
	}
	for _, kv := range lm.Attributes {
		if kv.Key == "gen_ai.input.messages" || bytes.Contains([]byte(kv.Value.String()), []byte(question)) {
			t.Errorf("prompt content recorded without the switch: %s", kv.Key)
		}
	}
	t.Logf("GenAI span %q: input %d, output %d tokens", lm.Name, in, out)
}
