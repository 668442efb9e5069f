package defaults

import (
	"context"

	"example.com/legacycorpus/internal/dspy"
)

// Transcript runs the package's scenario on the default pool.
func Transcript(ctx context.Context, python string, log *dspy.Log) error {
	if err := Setup(ctx, python, []map[string]any{{"answer": "first"}, {"answer": "second"}}); err != nil {
		return err
	}
	defer Teardown()
	for _, q := range []string{"one", "two"} {
		got, err := Ask(ctx, q)
		log.Add("defaults: ask %s -> %q %s", q, got, dspy.Outcome(err))
	}
	n, err := Programs(ctx)
	log.Add("defaults: programs=%d %s workers=%d healthy=%v", n, dspy.Outcome(err), Workers(), Healthy(ctx))
	_, err = Module(ctx, "missing")
	log.Add("defaults: module of a missing program: %s", dspy.Outcome(err))
	return nil
}
