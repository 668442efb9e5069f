package mlbridge_test

import (
	"context"
	"errors"
	"slices"
	"syscall"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/store"
)

const dspyBridge = "mlbridge_worker.frameworks.dspy_bridge:DSPyBridge"

// TestDSPyProgramsSurviveWorkerLoss runs real DSPy (with DSPy's own DummyLM) in a preloaded
// pool: the LM configuration reaches workers started later, and a program still executes
// after the worker that built it was killed.
func TestDSPyProgramsSurviveWorkerLoss(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.Bridge, c.Size, c.Preload = dspyBridge, 1, true })
	ctx := context.Background()
	answers := make([]any, 50)
	for i := range answers {
		answers[i] = map[string]any{"reasoning": "known fact", "answer": "Paris", "confidence": "0.9"}
	}
	if _, err := p.Define(ctx, store.Definition{ID: "lm", Kind: "lm", Global: true, Spec: map[string]any{"provider": "dummy", "answers": answers}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Define(ctx, store.Definition{ID: "qa", Kind: "program", Spec: map[string]any{
		"signature": "question: str -> answer: str, confidence: float", "module": "ChainOfThought",
	}}); err != nil {
		t.Fatal(err)
	}
	type out struct {
		Reasoning  string  `msgpack:"reasoning"`
		Answer     string  `msgpack:"answer"`
		Confidence float64 `msgpack:"confidence"`
	}
	exec := func() out {
		return poolCall[out](t, p, "execute_program", args("program_id", "qa", "inputs", args("question", "capital of France?")), mlbridge.Uses("qa"))
	}
	if got := exec(); got.Answer != "Paris" || got.Confidence != 0.9 || got.Reasoning == "" {
		t.Fatalf("first run: %+v", got)
	}
	victim := pids(p)[0]
	_ = syscall.Kill(victim, syscall.SIGKILL)
	waitReplaced(t, p, victim)
	// The new worker got the LM at start and the program on first use.
	if got := exec(); got.Answer != "Paris" {
		t.Fatalf("after the worker was killed: %+v", got)
	}
	progs := poolCall[[]string](t, p, "list_programs", nil)
	if !slices.Equal(progs, []string{"qa"}) {
		t.Fatalf("programs on the new worker: %v", progs)
	}

	// Bad input is a typed error, not a crash.
	_, err := p.Call(ctx, "execute_program", args("program_id", "qa", "inputs", args("question", 42)), mlbridge.Uses("qa"))
	if !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("wrong input type: %v", err)
	}
	if _, err := p.Define(ctx, store.Definition{ID: "bad", Kind: "program", Spec: map[string]any{"signature": "question answer"}}); err != nil {
		t.Fatal(err) // stored: the host does not judge spec contents...
	}
	_, err = p.Call(ctx, "execute_program", args("program_id", "bad", "inputs", args()), mlbridge.Uses("bad"))
	if !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("bad signature: %v", err) // ...the worker refuses to build it, clearly
	}
}
