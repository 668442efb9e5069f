package dspy_test

import (
	"context"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/dspy"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// BenchmarkExecuteProgram is one ExecuteProgram at a time through a real one-worker pool, on
// DSPy's DummyLM: the bridge's cost per call (what `mlbridge bench --scenario dspy` reports).
func BenchmarkExecuteProgram(b *testing.B) {
	ctx := context.Background()
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: dspy.Bridge, Python: testenv.Python(b)}, Size: 1,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	c := dspy.New(p)
	if err := c.ConfigureLM(ctx, dspy.LMConfig{Provider: "dummy", Answers: []map[string]any{{"answer": "Paris"}}}); err != nil {
		b.Fatal(err)
	}
	id, err := c.CreateProgram(ctx, "question -> answer")
	if err != nil {
		b.Fatal(err)
	}
	inputs := map[string]any{"question": "What is the capital of France?"}
	if _, err := c.ExecuteProgram(ctx, id, inputs); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ExecuteProgram(ctx, id, inputs); err != nil {
			b.Fatal(err)
		}
	}
}
