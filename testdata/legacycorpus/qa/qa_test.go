package qa

import (
	"context"
	"errors"
	"testing"

	"example.com/legacycorpus/internal/dspy"
	"example.com/legacycorpus/internal/fixture"
	"github.com/mlbridge/mlbridge"
	legacy "github.com/mlbridge/mlbridge/adapters"
)

func TestService(t *testing.T) {
	python := fixture.RequirePython(t)
	ctx := context.Background()
	var log dspy.Log
	s, err := Open(ctx, Config{Python: python, Answers: fixture.Answers("Paris"), Instructions: []string{"Be brief."}}, &log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.Ask(ctx, "capital of France?"); err != nil || got != "Paris" {
		t.Fatalf("Ask = %q, %v", got, err)
	}
	var info legacy.ProgramInfo
	if info, err = s.GetProgramInfo(ctx, s.program); err != nil || info.Module != "ChainOfThought" || info.Instructions != "Be brief." {
		t.Fatalf("GetProgramInfo = %+v, %v", info, err)
	}
	if err := s.Define(ctx, "mine", "text -> label"); err != nil {
		t.Fatal(err)
	}
	if err := s.Define(ctx, "mine", "text -> label"); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("a duplicate id: %v", err)
	}
	if _, err := s.ExecuteProgram(ctx, "nope", map[string]any{"text": "x"}); !errors.Is(err, mlbridge.ErrNotFound) {
		t.Fatalf("a missing program: %v", err)
	}
}
