package kinds

import (
	"context"
	"errors"
	"slices"
	"testing"

	"example.com/legacycorpus/internal/fixture"
	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/adapters"
)

func TestKindsOnAPool(t *testing.T) {
	python := fixture.RequirePython(t)
	ctx := context.Background()
	pool, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Workers: 1, Python: python})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if k := Kind(pool); k != "pool" {
		t.Fatalf("Kind = %q", k)
	}
	if err := Configure(ctx, pool, fixture.Answers("yes")); err != nil {
		t.Fatal(err)
	}
	id, err := Create(ctx, pool, "question -> answer", "cot")
	if err != nil {
		t.Fatal(err)
	}
	got, err := NewRunner(pool).Run(ctx, id, map[string]any{"question": "q"})
	if err != nil || got != "yes (ChainOfThought, question -> answer)" {
		t.Fatalf("Run = %q, %v", got, err)
	}
	if _, err := NewRunner(pool).Run(ctx, "missing", nil); !errors.Is(err, mlbridge.ErrNotFound) {
		t.Fatalf("Run(missing) = %v", err)
	}
	if _, err := Create(ctx, nil, "a -> b"); !errors.Is(err, ErrNoBackend) {
		t.Fatalf("Create(nil) = %v", err)
	}
}

func TestDescribeOnAPort(t *testing.T) {
	python := fixture.RequirePython(t)
	ctx := context.Background()
	port, err := adapters.NewPythonPort(ctx, adapters.Options{Python: python})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	if err := Configure(ctx, port, fixture.Answers("1")); err != nil {
		t.Fatal(err)
	}
	id, err := Create(ctx, port, "question -> answer: int")
	if err != nil {
		t.Fatal(err)
	}
	fields, err := Describe(ctx, port, id)
	if err != nil || !slices.Equal(fields, []string{"question:str", "answer:int"}) {
		t.Fatalf("Describe = %v, %v", fields, err)
	}
}
