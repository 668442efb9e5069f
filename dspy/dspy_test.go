package dspy_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/dspy"
)

// ProgramInfo.Signature keeps the field types (str, the default, stays implicit, so an untyped
// signature reads as written) and ParsedSignature the descriptions and instructions too.
func TestProgramInfoKeepsTypesAndDescriptions(t *testing.T) {
	ctx := context.Background()
	c := open(t)
	id, err := c.CreateProgram(ctx, "context: list[str], question -> answer, confidence: float",
		dspy.WithInstructions("Answer briefly."),
		dspy.WithFieldDescriptions(map[string]string{"confidence": "between 0 and 1"}))
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.GetProgramInfo(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := "context: list[str], question -> answer, confidence: float"; info.Signature != want {
		t.Fatalf("Signature = %q, want %q", info.Signature, want)
	}
	sig := info.ParsedSignature()
	reparsed, err := mlbridge.ParseSignature(info.Signature)
	if err != nil {
		t.Fatalf("Signature %q does not parse: %v", info.Signature, err)
	}
	if reparsed.String() != (mlbridge.Signature{Inputs: sig.Inputs, Outputs: sig.Outputs}).String() {
		t.Fatalf("Signature %q and the fields disagree: %+v", info.Signature, sig)
	}
	if len(sig.Outputs) != 2 || sig.Outputs[1] != (mlbridge.Field{Name: "confidence", Type: "float", Desc: "between 0 and 1"}) ||
		sig.Instructions != "Answer briefly." {
		t.Fatalf("ParsedSignature = %+v", sig)
	}

	plain, err := c.CreateProgram(ctx, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := c.GetProgramInfo(ctx, plain); err != nil || info.Signature != "question -> answer" {
		t.Fatalf("untyped signature: %q %v", info.Signature, err)
	}
}

// WithID chooses the program id: it must be new and well-formed.
func TestCreateProgramWithID(t *testing.T) {
	ctx := context.Background()
	c := open(t)
	if err := c.ConfigureLM(ctx, dspy.LMConfig{Provider: "dummy", Answers: []map[string]any{{"answer": "Paris"}}}); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateProgram(ctx, "question -> answer", dspy.WithID("my-id"))
	if err != nil || id != "my-id" {
		t.Fatalf("WithID: %q %v", id, err)
	}
	if out, err := c.ExecuteProgram(ctx, "my-id", map[string]any{"question": "q"}); err != nil || out["answer"] != "Paris" {
		t.Fatalf("execute my-id: %v %v", out, err)
	}
	if info, err := c.GetProgramInfo(ctx, "my-id"); err != nil || info.ID != "my-id" {
		t.Fatalf("info: %+v %v", info, err)
	}
	// Taken (by a program, or by the LM), malformed: refused, and the program stays as it was.
	for _, bad := range []string{"my-id", "lm", "", "has space", "a/b", "ünï", strings.Repeat("a", 129)} {
		if _, err := c.CreateProgram(ctx, "q -> a, b", dspy.WithID(bad)); !errors.Is(err, mlbridge.ErrInvalidArgument) {
			t.Errorf("WithID(%q): %v, want ErrInvalidArgument", bad, err)
		}
	}
	if info, err := c.GetProgramInfo(ctx, "my-id"); err != nil || info.Signature != "question -> answer" {
		t.Fatalf("my-id was overwritten: %+v %v", info, err)
	}
	ids, err := c.ListPrograms(ctx)
	if err != nil || !slices.Equal(ids, []string{"my-id"}) {
		t.Fatalf("list: %v %v", ids, err)
	}
	// The id is free again once the program is deleted.
	if err := c.DeleteProgram(ctx, "my-id"); err != nil {
		t.Fatal(err)
	}
	if id, err := c.CreateProgram(ctx, "q -> a", dspy.WithID("my-id")); err != nil || id != "my-id" {
		t.Fatalf("reuse after delete: %q %v", id, err)
	}
}
