package kinds

import (
	"context"
	"strings"

	"example.com/legacycorpus/internal/dspy"
	"github.com/mlbridge/mlbridge/adapters"
)

// Transcript runs the package's scenario on a pool and a port.
func Transcript(ctx context.Context, python string, log *dspy.Log) error {
	pool, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Workers: 1, Python: python})
	if err != nil {
		return err
	}
	defer pool.Close()
	port, err := adapters.NewPythonPort(ctx, adapters.Options{Python: python})
	if err != nil {
		return err
	}
	defer port.Close()
	var none Programs
	log.Add("kinds: %s %s %s %s", Kind(pool), Kind(port), Kind(pool.Client), Kind(none))

	for _, p := range []Programs{pool, port} {
		err := Configure(ctx, p, []map[string]any{
			{"reasoning": "r", "answer": Kind(p), "confidence": 0.5},
			{"answer": "again"},
			{"answer": "third"},
		})
		log.Add("kinds: configure %s: %s", Kind(p), dspy.Outcome(err))
	}
	err = Configure(ctx, pool, nil)
	log.Add("kinds: configure without answers: %s", dspy.Outcome(err))
	_, err = Create(ctx, none, "a -> b")
	log.Add("kinds: create on none: %v", err)

	id, err := Create(ctx, pool, "question -> answer, confidence: float", "cot", "Say how sure you are.")
	log.Add("kinds: create on pool: %s", dspy.Outcome(err))
	got, err := NewRunner(pool).Run(ctx, id, map[string]any{"question": "q"})
	log.Add("kinds: run -> %q %s", got, dspy.Outcome(err))
	_, err = NewRunner(pool).Run(ctx, "missing", map[string]any{"question": "q"})
	log.Add("kinds: run missing: %s", dspy.Outcome(err))

	counting := &Counting{PythonPoolV2: pool}
	cid, err := Create(ctx, counting, "question -> answer")
	log.Add("kinds: %s create: %s", Kind(counting), dspy.Outcome(err))
	for range 2 {
		out, err := counting.ExecuteProgram(ctx, cid, map[string]any{"question": "q"})
		log.Add("kinds: counting run -> %v %s", out["answer"], dspy.Outcome(err))
	}
	log.Add("kinds: counting runs=%d", counting.Runs)

	pid, err := Create(ctx, port, "context: list[str], question -> answer: int")
	log.Add("kinds: create on port: %s", dspy.Outcome(err))
	fields, err := Describe(ctx, port, pid)
	log.Add("kinds: describe -> %s %s", strings.Join(fields, " "), dspy.Outcome(err))
	_, err = Describe(ctx, port, "missing")
	log.Add("kinds: describe missing: %s", dspy.Outcome(err))
	_, err = Create(ctx, port, "question answer")
	log.Add("kinds: create a bad signature: %s", dspy.Outcome(err))
	return nil
}
