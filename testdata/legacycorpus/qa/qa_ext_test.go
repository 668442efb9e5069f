package qa_test

import (
	"context"
	"slices"
	"testing"

	"example.com/legacycorpus/internal/dspy"
	"example.com/legacycorpus/internal/fixture"
	"example.com/legacycorpus/qa"
	"github.com/mlbridge/mlbridge/adapters"
)

// The service's embedded pool is a legacy pool that callers use directly.
func TestServiceEmbedsThePool(t *testing.T) {
	python := fixture.RequirePython(t)
	ctx := context.Background()
	var log dspy.Log
	s, err := qa.Open(ctx, qa.Config{Python: python, Answers: fixture.Answers("x")}, &log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var pool *adapters.PythonPoolV2 = s.PythonPoolV2
	if err := pool.HealthCheck(ctx); err != nil {
		t.Fatal(err)
	}
	id, err := pool.CreateProgram(ctx, "text -> label", adapters.WithID("ext"))
	if err != nil || id != "ext" {
		t.Fatalf("CreateProgram = %q, %v", id, err)
	}
	ids, err := s.Programs(ctx)
	if err != nil || !slices.Contains(ids, "ext") {
		t.Fatalf("Programs = %v, %v", ids, err)
	}
	if st := s.GetStats(); st.Size != 1 {
		t.Fatalf("GetStats().Size = %d", st.Size)
	}
}
