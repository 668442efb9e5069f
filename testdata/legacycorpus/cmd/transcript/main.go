// Command transcript runs every package's scenario (or those its arguments name) against real
// workers and prints what happened, a line per result or error; the output is the same at
// every run.
package main

import (
	"context"
	"fmt"
	"os"
	"slices"

	"example.com/legacycorpus/defaults"
	"example.com/legacycorpus/dotted"
	"example.com/legacycorpus/flags"
	"example.com/legacycorpus/internal/dspy"
	"example.com/legacycorpus/internal/fixture"
	"example.com/legacycorpus/kinds"
	"example.com/legacycorpus/qa"
	"example.com/legacycorpus/tagged"
)

func main() {
	python := fixture.Python()
	if python == "" {
		fmt.Fprintln(os.Stderr, "transcript: set MLBRIDGE_PYTHON")
		os.Exit(2)
	}
	ctx := context.Background()
	var log dspy.Log
	for _, step := range []struct {
		name string
		run  func(context.Context, string, *dspy.Log) error
	}{
		{"qa", qa.Transcript},
		{"flags", flags.Transcript},
		{"kinds", kinds.Transcript},
		{"dotted", func(ctx context.Context, python string, log *dspy.Log) error {
			return dotted.Summarize(ctx, python, []string{"first text", "second text"}, log)
		}},
		{"defaults", defaults.Transcript},
		{"tagged", tagged.Transcript},
	} {
		if len(os.Args) > 1 && !slices.Contains(os.Args[1:], step.name) {
			continue
		}
		if err := step.run(ctx, python, &log); err != nil {
			fmt.Fprintf(os.Stderr, "transcript: %s: %v\n", step.name, err)
			os.Exit(1)
		}
	}
	fmt.Print(log.String())
}
