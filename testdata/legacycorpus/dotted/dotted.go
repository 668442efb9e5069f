// Package dotted dot-imports the legacy package, as some teams did to keep call sites short.
package dotted

import (
	"context"
	"fmt"

	"example.com/legacycorpus/internal/dspy"
	. "github.com/mlbridge/mlbridge/adapters"
)

// Summarize summarizes each text with a Predict program and logs what happened.
func Summarize(ctx context.Context, python string, texts []string, log *dspy.Log) error {
	pool, err := NewPythonPoolV2(ctx, Options{Workers: 1, Python: python})
	if err != nil {
		return err
	}
	defer pool.Close()
	var answers []map[string]any
	for i := range texts {
		answers = append(answers, map[string]any{"summary": fmt.Sprintf("summary %d", i+1)})
	}
	if err := pool.ConfigureLM(ctx, LMConfig{Provider: "dummy", Answers: answers}); err != nil {
		return err
	}
	id, err := pool.CreateProgram(ctx, "text -> summary",
		WithModule("Predict"),
		WithInstructions("One line."), // kept short for the log
		WithFieldDescriptions(map[string]string{"summary": "one line"}))
	if err != nil {
		return err
	}
	var info ProgramInfo
	if info, err = pool.GetProgramInfo(ctx, id); err != nil {
		return err
	}
	log.Add("dotted: %s %q %s", info.Module, info.Signature, info.Outputs[0].Desc)
	for _, text := range texts {
		out, err := pool.ExecuteProgram(ctx, id, map[string]any{"text": text})
		log.Add("dotted: %q -> %v %s", text, out["summary"], dspy.Outcome(err))
	}
	_, err = pool.ExecuteProgram(ctx, id, map[string]any{})
	log.Add("dotted: no input: %s", dspy.Outcome(err))
	return nil
}
