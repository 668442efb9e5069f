package flags

import (
	"context"

	"example.com/legacycorpus/internal/dspy"
	"github.com/mlbridge/mlbridge/adapters"
)

// Transcript asks the same questions through each backend on one pool, and an unknown flag.
func Transcript(ctx context.Context, python string, log *dspy.Log) error {
	pool, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Workers: 1, Python: python})
	if err != nil {
		return err
	}
	defer pool.Close()
	answers := []map[string]any{}
	for _, a := range []string{"legacy-1", "current-1", "same", "same", "one", "other"} {
		answers = append(answers, map[string]any{"answer": a})
	}
	if err := pool.ConfigureLM(ctx, adapters.LMConfig{Provider: "dummy", Answers: answers}); err != nil {
		return err
	}
	id, err := pool.CreateProgram(ctx, "question -> answer", adapters.WithID("flags-qa"))
	if err != nil {
		return err
	}
	for _, flag := range []string{"legacy", "current", "shadow", "shadow", "nope"} {
		b, err := Choose(flag, pool, id)
		if err != nil {
			log.Add("flags: %s: %v", flag, err)
			continue
		}
		got, err := b.Answer(ctx, "q")
		log.Add("flags: %s -> %q %s", flag, got, dspy.Outcome(err))
		if s, ok := b.(*Shadow); ok {
			log.Add("flags: shadow mismatches=%d", s.Mismatches.Load())
		}
	}
	b, _ := Choose("current", pool, "missing")
	_, err = b.Answer(ctx, "q")
	log.Add("flags: current on a missing program: %s", dspy.Outcome(err))
	b, _ = Choose("legacy", pool, "missing")
	_, err = b.Answer(ctx, "q")
	log.Add("flags: legacy on a missing program: %s", dspy.Outcome(err))
	return nil
}
