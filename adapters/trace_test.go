package adapters_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/adapters"
	"github.com/mlbridge/mlbridge/dspy"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// A legacy type over a pool the application opened traces its operations with that pool's
// TracerProvider, as dspy.New(pool) does: the operation span (dspy.ExecuteProgram) is in the
// pool's provider and is the parent of the call it makes. The counting wrapper used to hide
// the pool, so the operation span went to the global provider (a no-op here) and the calls
// were roots.
func TestLegacyOperationsUseThePoolsTracer(t *testing.T) {
	ctx := context.Background()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: dspy.Bridge, Python: testenv.Python(t), TracerProvider: tp}, Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	legacy, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Adapter: p})
	if err != nil {
		t.Fatal(err)
	}
	if err := legacy.ConfigureLM(ctx, dummyLM(10)); err != nil {
		t.Fatal(err)
	}
	id, err := legacy.CreateProgram(ctx, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := legacy.ExecuteProgram(ctx, id, map[string]any{"question": "q"}); err != nil {
		t.Fatal(err)
	}
	var op trace.SpanContext
	for _, s := range rec.Ended() {
		if s.Name() == "dspy.ExecuteProgram" && s.SpanKind() == trace.SpanKindInternal {
			op = s.SpanContext()
		}
	}
	if !op.IsValid() {
		t.Fatalf("no dspy.ExecuteProgram span in the pool's provider; spans: %v", names(rec.Ended()))
	}
	children := 0
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindClient && s.Parent().SpanID() == op.SpanID() {
			children++
		}
	}
	if children == 0 {
		t.Errorf("the operation span has no client span under it; spans: %v", names(rec.Ended()))
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name() + "/" + s.SpanKind().String()
	}
	return out
}
