package legacyapp

import (
	"context"
	"os"
	"testing"
)

func TestAnswerer(t *testing.T) {
	python := os.Getenv("MLBRIDGE_PYTHON")
	if python == "" {
		t.Skip("MLBRIDGE_PYTHON is not set")
	}
	ctx := context.Background()
	a, err := New(ctx, python, []map[string]any{{"reasoning": "it is", "answer": "Paris"}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if got, err := a.Ask(ctx, "capital of France?"); err != nil || got != "Paris" {
		t.Fatalf("Ask = %q, %v", got, err)
	}
	if m, err := a.Describe(ctx); err != nil || m != "ChainOfThought" {
		t.Fatalf("Describe = %q, %v", m, err)
	}
	if !a.Healthy(ctx) {
		t.Fatal("not healthy")
	}
}
