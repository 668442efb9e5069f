package flags

import (
	"context"
	"testing"

	"example.com/legacycorpus/internal/fixture"
	"github.com/mlbridge/mlbridge/adapters"
)

// Rollback is a flag flip: legacy and current answer from the same program and pool.
func TestEveryBackendAnswers(t *testing.T) {
	python := fixture.RequirePython(t)
	ctx := context.Background()
	pool, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Workers: 1, Python: python})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := pool.ConfigureLM(ctx, adapters.LMConfig{Provider: "dummy", Answers: fixture.Answers("a", "b", "c", "c", "d", "e")}); err != nil {
		t.Fatal(err)
	}
	id, err := pool.CreateProgram(ctx, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ flag, want string }{{"legacy", "a"}, {"current", "b"}, {"shadow", "c"}} {
		b, err := Choose(tc.flag, pool, id)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := b.Answer(ctx, "q"); err != nil || got != tc.want {
			t.Fatalf("%s: %q, %v; want %q", tc.flag, got, err, tc.want)
		}
		if s, ok := b.(*Shadow); ok && s.Mismatches.Load() != 0 {
			t.Fatalf("shadow saw %d mismatches on equal answers", s.Mismatches.Load())
		}
	}
	b, _ := Choose("shadow", pool, id)
	b.Answer(ctx, "q")
	if n := b.(*Shadow).Mismatches.Load(); n != 1 {
		t.Fatalf("shadow mismatches = %d, want 1", n)
	}
	if _, err := Choose("bogus", pool, id); err == nil {
		t.Fatal("an unknown flag chose a backend")
	}
}
