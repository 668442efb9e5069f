// Package legacyapp is a small application written against the legacy DSPy API, as existing
// users wrote it. The migration tests copy it, run `go fix ./...` (and `mlbridge migrate`) on
// the copy, and run its tests again.
package legacyapp

import (
	"context"

	"github.com/mlbridge/mlbridge/adapters"
)

// Answerer answers questions with a ChainOfThought program.
type Answerer struct {
	pool *adapters.PythonPoolV2
	prog string
}

// New starts a pool on DSPy's DummyLM answering answers in turn.
func New(ctx context.Context, python string, answers []map[string]any) (*Answerer, error) {
	pool, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Workers: 1, Python: python})
	if err != nil {
		return nil, err
	}
	if err := pool.ConfigureLM(ctx, adapters.LMConfig{Provider: "dummy", Answers: answers}); err != nil {
		pool.Close()
		return nil, err
	}
	var opts []adapters.ProgramOption
	opts = append(opts, adapters.WithModule("ChainOfThought"), adapters.WithInstructions("Answer briefly."))
	id, err := pool.CreateProgram(ctx, "question -> answer", opts...)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &Answerer{pool: pool, prog: id}, nil
}

// Ask runs the program.
func (a *Answerer) Ask(ctx context.Context, question string) (string, error) {
	out, err := a.pool.ExecuteProgram(ctx, a.prog, map[string]any{"question": question})
	if err != nil {
		return "", err
	}
	answer, _ := out["answer"].(string)
	return answer, nil
}

// Describe returns the program's module.
func (a *Answerer) Describe(ctx context.Context) (string, error) {
	info, err := a.pool.GetProgramInfo(ctx, a.prog)
	if err != nil {
		return "", err
	}
	return info.Module, nil
}

// Healthy reports whether the pool is ready.
func (a *Answerer) Healthy(ctx context.Context) bool { return a.pool.HealthCheck(ctx) == nil }

// Close stops the pool.
func (a *Answerer) Close() error { return a.pool.Close() }
