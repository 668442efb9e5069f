package dspy_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/dspy"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/store"
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

// Callers racing for one chosen id: exactly one creates the program, the others get
// ErrInvalidArgument, and the stored program is the winner's (the store checks the id in the
// same step as the write).
func TestCreateProgramWithIDRace(t *testing.T) {
	ctx := context.Background()
	sigs := []string{"q -> a", "q -> b", "q -> c", "q -> d", "q -> e", "q -> f"}
	// Every racer passes the early in-use check before any writes: only the store's atomic
	// check can stop the later writers.
	barrier := &barrierStore{Store: store.NewMemory(), id: "raced", n: len(sigs), all: make(chan struct{})}
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: dspy.Bridge, Python: testenv.Python(t)}, Size: 1, Store: barrier,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dspy.New(p)
	errs := make([]error, len(sigs))
	var wg sync.WaitGroup
	for i, sig := range sigs {
		wg.Go(func() { _, errs[i] = c.CreateProgram(ctx, sig, dspy.WithID("raced")) })
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner < 0:
			winner = i
		case err == nil:
			t.Fatalf("both %q and %q created program raced", sigs[winner], sigs[i])
		case !errors.Is(err, mlbridge.ErrInvalidArgument) || !strings.Contains(err.Error(), `"raced" is already in use`):
			t.Fatalf("a loser got %v, want ErrInvalidArgument naming the id", err)
		}
	}
	if winner < 0 {
		t.Fatal("no caller created the program")
	}
	if info, err := c.GetProgramInfo(ctx, "raced"); err != nil || info.Signature != sigs[winner] {
		t.Fatalf("stored %+v %v, want the winner's signature %q", info, err, sigs[winner])
	}
}

// barrierStore holds every Get of id until n of them have arrived.
type barrierStore struct {
	store.Store
	id      string
	n       int
	mu      sync.Mutex
	arrived int
	all     chan struct{}
}

func (b *barrierStore) Get(ctx context.Context, id string) (store.Definition, error) {
	if id == b.id {
		b.mu.Lock()
		if b.arrived++; b.arrived == b.n {
			close(b.all)
		}
		b.mu.Unlock()
		select {
		case <-b.all:
		case <-time.After(10 * time.Second): // a racer that never came: the test reports it
		}
	}
	return b.Store.Get(ctx, id)
}

// An input named as a field the module adds itself is refused when the program is created:
// ChainOfThought's "reasoning" output replaced it, and DSPy ignored the caller's value.
func TestInputNamedAsAModuleField(t *testing.T) {
	ctx := context.Background()
	c := open(t)
	for _, tc := range []struct {
		sig  string
		opts []dspy.ProgramOption
	}{
		{"reasoning -> answer", []dspy.ProgramOption{dspy.WithModule("ChainOfThought")}},
		{"question, reasoning -> answer", []dspy.ProgramOption{dspy.WithModule("MultiChainComparison")}},
	} {
		if id, err := c.CreateProgram(ctx, tc.sig, tc.opts...); !errors.Is(err, mlbridge.ErrInvalidArgument) {
			t.Errorf("%s: CreateProgram = %q, %v; want ErrInvalidArgument", tc.sig, id, err)
		}
	}
	// Predict adds nothing: the same input is fine there.
	if _, err := c.CreateProgram(ctx, "reasoning -> answer"); err != nil {
		t.Fatal(err)
	}
}

// A prompt longer than the local model's context window is the caller's input: ErrInvalidArgument,
// as a provider's context-window error is, not llama.cpp's ValueError reported as unknown.
// The prompt is refused before any token is generated, so the test is quick.
func TestLocalLMPromptOverContext(t *testing.T) {
	ctx := context.Background()
	c := open(t)
	if err := c.ConfigureLM(ctx, dspy.LMConfig{Provider: "local", ContextSize: 512, MaxTokens: 8}); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateProgram(ctx, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ExecuteProgram(ctx, id, map[string]any{"question": strings.Repeat("word ", 3000)})
	if !errors.Is(err, mlbridge.ErrInvalidArgument) || !strings.Contains(err.Error(), "context") {
		t.Fatalf("a prompt over the context window: %v; want ErrInvalidArgument", err)
	}
}
