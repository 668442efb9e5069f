package dspy_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/dspy"
)

type verdict struct {
	Answer     string   `msgpack:"answer"`
	Confidence float64  `json:"confidence"` // the json tag counts too, as in mlbridge.Decode
	Votes      int      `msgpack:"votes"`
	Sure       bool     `msgpack:"sure"`
	Sources    []string `msgpack:"sources"`
	Note       *string  `msgpack:"note"` // optional: absent from the outputs, left nil
	Ignored    string   `msgpack:"-"`
}

// Execute decodes a program's outputs into a struct, typed; ChainOfThought's reasoning, which
// the struct has no field for, is ignored. Inputs can be a struct too.
func TestExecuteTyped(t *testing.T) {
	ctx := context.Background()
	c := open(t)
	answer := map[string]any{"reasoning": "known", "answer": "Paris", "confidence": "0.9", "votes": "3",
		"sure": "true", "sources": `["atlas", "wiki"]`}
	if err := c.ConfigureLM(ctx, dspy.LMConfig{Provider: "dummy", Answers: []map[string]any{answer, answer, answer}}); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateProgram(ctx, "question -> answer, confidence: float, votes: int, sure: bool, sources: list[str]",
		dspy.WithModule("ChainOfThought"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := dspy.Execute[verdict](ctx, c, id, map[string]any{"question": "capital of France?"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Answer != "Paris" || got.Confidence != 0.9 || got.Votes != 3 || !got.Sure ||
		len(got.Sources) != 2 || got.Sources[1] != "wiki" || got.Note != nil {
		t.Fatalf("got %+v", got)
	}
	type question struct {
		Question string `json:"question"`
	}
	p, err := dspy.Execute[*verdict](ctx, c, id, question{"capital of France?"})
	if err != nil || p.Answer != "Paris" {
		t.Fatalf("pointer, struct inputs: %+v %v", p, err)
	}
	if _, err := dspy.Execute[string](ctx, c, id, question{"q"}); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("T not a struct: %v", err)
	}
}

// A missing output or one of another type is an *OutputError matching ErrSerialization,
// never a zero value.
func TestExecuteTypedMismatch(t *testing.T) {
	ctx := context.Background()
	c := open(t)
	answer := map[string]any{"answer": "Paris", "confidence": "0.9"}
	if err := c.ConfigureLM(ctx, dspy.LMConfig{Provider: "dummy", Answers: []map[string]any{answer, answer, answer}}); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateProgram(ctx, "question -> answer, confidence: float")
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]any{"question": "q"}
	check := func(err error, field, got string) {
		t.Helper()
		oe, ok := errors.AsType[*dspy.OutputError](err)
		if !ok || !errors.Is(err, mlbridge.ErrSerialization) || oe.Field != field || oe.Got != got {
			t.Fatalf("got %v, want an OutputError for %s (%s)", err, field, got)
		}
	}
	_, err = dspy.Execute[struct {
		Answer string `msgpack:"answer"`
		Votes  int    `msgpack:"votes"`
	}](ctx, c, id, in)
	check(err, "votes", "missing")
	_, err = dspy.Execute[struct {
		Confidence int `msgpack:"confidence"` // 0.9 is not a whole number
	}](ctx, c, id, in)
	check(err, "confidence", "float64")
	_, err = dspy.Execute[struct {
		Answer bool `msgpack:"answer"`
	}](ctx, c, id, in)
	check(err, "answer", "string")
}

// Base is embedded in the structs below: its fields are the outputs' own, as mlbridge.Decode
// (msgpack, encoding/json) promote them, not an output named "Base".
type Base struct {
	Answer string `msgpack:"answer"`
}

type withConfidence struct {
	Confidence float64 `json:"confidence"`
}

// An embedded struct's fields are filled from the outputs of their names, as mlbridge.Decode
// does: embedded by value, by pointer, or unexported; a missing promoted output is still an
// OutputError.
func TestExecuteTypedEmbedded(t *testing.T) {
	ctx := context.Background()
	c := open(t)
	answer := map[string]any{"answer": "Paris", "confidence": "0.9"}
	if err := c.ConfigureLM(ctx, dspy.LMConfig{Provider: "dummy", Answers: []map[string]any{answer, answer, answer, answer}}); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateProgram(ctx, "question -> answer, confidence: float")
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]any{"question": "q"}
	type byValue struct {
		Base
		withConfidence
	}
	v, err := dspy.Execute[byValue](ctx, c, id, in)
	if err != nil || v.Answer != "Paris" || v.Confidence != 0.9 {
		t.Fatalf("embedded by value: %+v, %v", v, err)
	}
	type byPointer struct {
		*Base
		Confidence float64 `msgpack:"confidence"`
	}
	p, err := dspy.Execute[byPointer](ctx, c, id, in)
	if err != nil || p.Base == nil || p.Answer != "Paris" || p.Confidence != 0.9 {
		t.Fatalf("embedded by pointer: %+v, %v", p, err)
	}
	type missing struct {
		Base
		Votes struct {
			N int `msgpack:"votes"`
		} `msgpack:"tally"` // a tagged struct field is an output of its own, not promoted
	}
	_, err = dspy.Execute[missing](ctx, c, id, in)
	if oe, ok := errors.AsType[*dspy.OutputError](err); !ok || oe.Field != "tally" || oe.Got != "missing" {
		t.Fatalf("a missing tagged struct: %v", err)
	}
}
