// Package qa answers questions through Service, the team's wrapper that embeds the legacy pool
// so that callers reach every pool method through it.
package qa

import (
	"context"
	"strings"

	"example.com/legacycorpus/internal/dspy"
	legacy "github.com/mlbridge/mlbridge/adapters" // the pool this service grew up with
)

// Service is a question-answering program on its own pool.
type Service struct {
	*legacy.PythonPoolV2

	program string
	log     *dspy.Log
}

// Config says how Open starts a Service.
type Config struct {
	Python       string
	Answers      []map[string]any
	Instructions []string          // the last one wins
	Describe     map[string]string // field descriptions
}

// Open starts the pool, configures DSPy's DummyLM and creates the program.
func Open(ctx context.Context, cfg Config, log *dspy.Log) (*Service, error) {
	pool, err := legacy.NewPythonPoolV2(ctx, legacy.Options{Workers: 1, Python: cfg.Python})
	if err != nil {
		return nil, err
	}
	if err := pool.ConfigureLM(ctx, legacy.LMConfig{Provider: "dummy", Answers: cfg.Answers}); err != nil {
		pool.Close()
		return nil, err
	}
	opts := []legacy.ProgramOption{legacy.WithModule("ChainOfThought")}
	for _, text := range cfg.Instructions {
		opts = append(opts, legacy.WithInstructions(text))
	}
	if len(cfg.Describe) > 0 {
		opts = append(opts, legacy.WithFieldDescriptions(cfg.Describe))
	}
	id, err := pool.CreateProgram(ctx, "question -> answer", opts...)
	if err != nil {
		pool.Close()
		return nil, err
	}
	log.Add("qa: program module=%s", moduleOf(ctx, pool, id))
	return &Service{PythonPoolV2: pool, program: id, log: log}, nil
}

// Ask runs the service's program on question.
func (s *Service) Ask(ctx context.Context, question string) (string, error) {
	out, err := s.ExecuteProgram(ctx, s.program /* the service's program */, map[string]interface{}{
		"question": question, // the only input field
	})
	if err != nil {
		s.log.Add("qa: ask %q: %s", question, dspy.Outcome(err))
		return "", err
	}
	answer, _ := out["answer"].(string)
	s.log.Add("qa: ask %q -> %q", question, answer)
	return answer, nil
}

// Define creates another program with an id the caller chooses.
func (s *Service) Define(ctx context.Context, id, signature string) error {
	_, err := s.CreateProgram(ctx, signature, legacy.WithID(id), legacy.WithModule(capitalize("predict")))
	s.log.Add("qa: define %s %q: %s", id, signature, dspy.Outcome(err))
	return err
}

// Programs lists the program ids, sorted by the pool.
func (s *Service) Programs(ctx context.Context) ([]string, error) {
	ids, err := s.PythonPoolV2.ListPrograms(ctx)
	s.log.Add("qa: programs %d: %s", len(ids), dspy.Outcome(err))
	return ids, err
}

// Forget deletes program id.
func (s *Service) Forget(ctx context.Context, id string) error {
	err := s.DeleteProgram(ctx, id)
	s.log.Add("qa: forget %s: %s", id, dspy.Outcome(err))
	return err
}

// capitalize is s with its first letter in upper case, as DSPy spells its modules.
func capitalize(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// moduleOf is the module a program was built with, or the outcome of asking.
func moduleOf(ctx context.Context, pool *legacy.PythonPoolV2, id string) string {
	info, err := pool.GetProgramInfo(ctx, id)
	if err != nil {
		return dspy.Outcome(err)
	}
	return info.Module
}

// Transcript runs the package's scenario: answers, a chosen id, a duplicate id, a bad
// signature, a missing input, a missing program, and deletion.
func Transcript(ctx context.Context, python string, log *dspy.Log) error {
	s, err := Open(ctx, Config{
		Python:       python,
		Answers:      []map[string]any{{"reasoning": "r", "answer": "Paris"}, {"reasoning": "r", "answer": "4"}},
		Instructions: []string{"Answer at length.", "Answer briefly."},
		Describe:     map[string]string{"answer": "one word"},
	}, log)
	if err != nil {
		return err
	}
	defer s.Close()
	s.Ask(ctx, "capital of France?")
	s.Ask(ctx, "2+2?")
	s.Define(ctx, "qa-extra", "text -> label")
	s.Define(ctx, "qa-extra", "text -> label")
	s.Define(ctx, "qa-bad", "text -> ")
	_, err = s.ExecuteProgram(ctx, "qa-extra", map[string]any{"wrong": "x"})
	log.Add("qa: missing input: %s", dspy.Outcome(err))
	_, err = s.ExecuteProgram(ctx, "no-such-program", map[string]any{"text": "x"})
	log.Add("qa: missing program: %s", dspy.Outcome(err))
	s.Programs(ctx)
	s.Forget(ctx, "qa-extra")
	s.Forget(ctx, "qa-extra")
	s.Programs(ctx)
	log.Add("qa: healthy=%v", s.HealthCheck(ctx) == nil)
	return nil
}
