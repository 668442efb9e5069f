// The demo of examples/dspy-local written against the legacy DSPy API (adapters.PythonPoolV2),
// as code from before the multi-framework API calls it: kept to show that such code still runs
// unchanged, and as a small input for `mlbridge migrate` (docs/MIGRATION.md). New code: see
// examples/dspy-local.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"sync"

	"github.com/mlbridge/mlbridge/adapters"
)

var questions = []string{
	"What is the capital of France?",
	"How many legs does a spider have?",
	"What is frozen water called?",
}

func main() {
	workers := flag.Int("workers", 2, "Python worker processes")
	flag.Parse()
	ctx := context.Background()

	// Deprecation notices are on by default (adapters.Options.Phase); each legacy call is
	// counted and, with a logger, reported once.
	pool, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Workers: *workers})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if err := pool.ConfigureLM(ctx, adapters.LMConfig{Provider: "local", MaxTokens: 96}); err != nil {
		log.Fatal(err)
	}
	id, err := pool.CreateProgram(ctx, "question: str -> answer: str", adapters.WithModule("ChainOfThought"),
		adapters.WithInstructions("Answer the question in a few words."))
	if err != nil {
		log.Fatal(err)
	}
	answers := make([]string, len(questions))
	var wg sync.WaitGroup
	for i, q := range questions {
		wg.Go(func() {
			out, err := pool.ExecuteProgram(ctx, id, map[string]any{"question": q})
			if err != nil {
				answers[i] = "error: " + err.Error()
				return
			}
			answers[i] = fmt.Sprint(out["answer"])
		})
	}
	wg.Wait()
	for i, q := range questions {
		fmt.Printf("Q: %s\nA: %s\n\n", q, answers[i])
	}
}
