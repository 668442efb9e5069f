package dspy_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/dspy"
)

// Each module beyond Predict and ChainOfThought, through CreateProgram and ExecuteProgram on a
// real worker, with DSPy's DummyLM scripted answer by answer.
func TestMoreModules(t *testing.T) {
	ctx := context.Background()
	c := open(t)
	q := map[string]any{"question": "capital of France?"}
	cases := []struct {
		name    string
		opts    []dspy.ProgramOption
		answers []map[string]any
		want    map[string]any
	}{{
		name: "MultiChainComparison",
		opts: []dspy.ProgramOption{dspy.WithModule("MultiChainComparison"), dspy.WithAttempts(2)},
		answers: []map[string]any{
			{"reasoning": "the biggest city", "answer": "Lyon"}, {"reasoning": "the capital", "answer": "Paris"},
			{"rationale": "the capital is asked for", "answer": "Paris"}},
		want: map[string]any{"rationale": "the capital is asked for", "answer": "Paris"},
	}, {
		// The second attempt reaches the threshold: the third answer is never asked for.
		name: "BestOfN",
		opts: []dspy.ProgramOption{dspy.WithModule("BestOfN"), dspy.WithAttempts(3),
			dspy.WithReward(dspy.RewardExactMatch("answer", "paris"), 1)},
		answers: []map[string]any{{"answer": "Lyon"}, {"answer": "Paris"}, {"answer": "Nice"}},
		want:    map[string]any{"answer": "Paris"},
	}, {
		// Under the threshold, Refine asks the LM for advice, then tries again with it.
		name: "Refine",
		opts: []dspy.ProgramOption{dspy.WithModule("Refine"), dspy.WithInner("Predict"),
			dspy.WithReward(dspy.RewardContains("answer", "Paris"), 1)},
		answers: []map[string]any{{"answer": "Lyon"},
			{"discussion": "wrong city", "advice": map[string]any{"self": "name the capital"}}, {"answer": "It is Paris"}},
		want: map[string]any{"answer": "It is Paris"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.ConfigureLM(ctx, dspy.LMConfig{Provider: "dummy", Answers: tc.answers}); err != nil {
				t.Fatal(err)
			}
			id, err := c.CreateProgram(ctx, "question -> answer", tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.ExecuteProgram(ctx, id, q)
			if err != nil || !maps.Equal(got, tc.want) {
				t.Fatalf("got %v %v, want %v", got, err, tc.want)
			}
			if info, err := c.GetProgramInfo(ctx, id); err != nil || info.Module != tc.name {
				t.Fatalf("info %+v %v", info, err)
			}
		})
	}
}

// Module options are checked in Go, before anything is stored; ReAct without tools is refused
// clearly.
func TestModuleOptionsAreChecked(t *testing.T) {
	ctx := context.Background()
	c := open(t)
	reward := dspy.WithReward(dspy.RewardExactMatch("answer", "x"), 1)
	for _, tc := range []struct {
		opts []dspy.ProgramOption
		want string
	}{
		{[]dspy.ProgramOption{dspy.WithModule("ReAct")}, "ReAct needs tools"},
		{[]dspy.ProgramOption{dspy.WithModule("Retry")}, "unknown module"},
		{[]dspy.ProgramOption{dspy.WithModule("BestOfN")}, "needs WithReward"},
		{[]dspy.ProgramOption{dspy.WithModule("Refine"), dspy.WithReward(dspy.RewardExactMatch("nope", "x"), 1)}, "not an output"},
		{[]dspy.ProgramOption{dspy.WithModule("Refine"), dspy.WithReward(dspy.Reward{Builtin: "f1", Field: "answer"}, 1)}, "unknown builtin reward"},
		{[]dspy.ProgramOption{dspy.WithModule("BestOfN"), reward, dspy.WithInner("ReAct")}, "unknown inner module"},
		{[]dspy.ProgramOption{dspy.WithModule("BestOfN"), reward, dspy.WithAttempts(0)}, "at least 1"},
		{[]dspy.ProgramOption{dspy.WithModule("MultiChainComparison"), reward}, "takes no reward"},
		{[]dspy.ProgramOption{dspy.WithAttempts(3)}, "takes no attempts"},
		{[]dspy.ProgramOption{dspy.WithModule("ReAct"), dspy.WithTools("weather"), dspy.WithMaxIters(0)}, "at least 1"},
		{[]dspy.ProgramOption{dspy.WithModule("ReAct"), dspy.WithTools("weather"), reward}, "takes no reward"},
		{[]dspy.ProgramOption{dspy.WithTools("weather")}, "only ReAct"},
		// checked in Python against the functions the host registered (none here)
		{[]dspy.ProgramOption{dspy.WithModule("ReAct"), dspy.WithTools("weather")}, "no host function named 'weather'"},
	} {
		_, err := c.CreateProgram(ctx, "question -> answer", tc.opts...)
		if !errors.Is(err, mlbridge.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want ErrInvalidArgument with %q", err, tc.want)
		}
	}
	if ids, err := c.ListPrograms(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("refused programs were stored: %v %v", ids, err)
	}
}
