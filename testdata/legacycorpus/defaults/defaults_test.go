package defaults

import (
	"context"
	"testing"

	"example.com/legacycorpus/internal/fixture"
)

func TestDefaultPool(t *testing.T) {
	python := fixture.RequirePython(t)
	ctx := context.Background()
	if err := Setup(ctx, python, fixture.Answers("yes")); err != nil {
		t.Fatal(err)
	}
	defer Teardown()
	if got, err := Ask(ctx, "q"); err != nil || got != "yes" {
		t.Fatalf("Ask = %q, %v", got, err)
	}
	if n, err := Programs(ctx); err != nil || n != 0 {
		t.Fatalf("Programs = %d, %v (Ask deletes its program)", n, err)
	}
	if Workers() != 1 || !Healthy(ctx) {
		t.Fatalf("Workers = %d, Healthy = %v", Workers(), Healthy(ctx))
	}
}
