package dspy_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/dspy"
)

// miproLM is a DummyLM MIPROv2 can run on: every answer carries the fields of MIPROv2's
// proposer prompts (which quote the data, so any key may match them), and the program's
// questions are answered right for every other capital (France, Spain, Egypt, Kenya, Cuba).
func miproLM() dspy.LMConfig {
	meta := map[string]any{
		"proposed_instruction": "Name the capital city.", "program_description": "It answers questions.",
		"module_description": "It answers.", "observations": "Capitals.", "summary": "Capitals of countries.",
	}
	answers := map[string]map[string]any{}
	for _, k := range []string{"proposed_instruction", "program_description", "module_description", "observations", "summary"} {
		answers[k] = maps.Clone(meta)
		answers[k]["answer"] = "?"
	}
	for i, ex := range capitals {
		a := maps.Clone(meta)
		a["answer"] = "?"
		if i%2 == 0 {
			a["answer"] = ex["answer"]
		}
		answers[ex["question"].(string)] = a
	}
	return dspy.LMConfig{Provider: "dummy", AnswersByPrompt: answers}
}

// MIPROv2 (auto light) from Go, with a builtin metric and then a Go metric: the trials stream,
// the result is stored as the program's next version, and a cancel during a run stops it and
// stores nothing. It needs optuna in the workers' Python (the "mipro" extra); without it the
// run is refused with ErrInvalidConfiguration and the test stops there.
func TestOptimizeMIPROv2Light(t *testing.T) {
	bg := context.Background()
	var goCalls recorder[float64]
	cityMatch := dspy.MetricFunc("city_match", func(ctx context.Context, in dspy.MetricInput) (float64, error) {
		score := 0.0
		if strings.EqualFold(in.Prediction["answer"].(string), in.Example["answer"].(string)) {
			score = 1
		}
		goCalls.add(score)
		return score, nil
	})
	c := openWithFuncs(t, cityMatch)
	if err := c.ConfigureLM(bg, miproLM()); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateProgram(bg, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	light := map[string]any{"auto": "light", "max_errors": 100}
	for i, metric := range []dspy.Metric{dspy.ExactMatch("answer"), dspy.GoMetric("city_match")} {
		var trials []float64
		res, err := c.Optimize(bg, id, dspy.OptimizeConfig{Optimizer: "MIPROv2", Trainset: capitals, Metric: metric, Options: light,
			Progress: func(p dspy.Progress) {
				if p.Event == "trial" {
					trials = append(trials, p.Score)
				}
			}})
		if errors.Is(err, mlbridge.ErrInvalidConfiguration) && strings.Contains(err.Error(), "optuna") {
			t.Skipf("the workers' Python has no optuna (install the mipro extra: ./scripts/bootstrap): %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		// MIPROv2 scores on the last 8 examples (its 80% split): 4 of them are answered right.
		for _, s := range trials {
			if s != 0.5 {
				t.Fatalf("%s: trial scores %v, want 0.5 each", metric, trials)
			}
		}
		if len(trials) < 2 || res.Trials != len(trials) || res.BestScore == nil || *res.BestScore != 0.5 || res.Version != uint64(2+i) {
			t.Fatalf("%+v: %d trials %v, result %+v", metric, len(trials), trials, res)
		}
		if metric.Func != "" && (len(goCalls.all()) != res.MetricCalls || res.MetricCalls == 0) {
			t.Fatalf("the Go metric ran %d times, the optimizer reports %d", len(goCalls.all()), res.MetricCalls)
		}
		if d, _ := c.Adapter().Get(bg, id); d.Version != res.Version || len(d.State) == 0 {
			t.Fatalf("stored version %d (%d state bytes), want %d", d.Version, len(d.State), res.Version)
		}
		t.Logf("MIPROv2 light, metric %+v: %d trials, %d metric calls, best %.2f, %d demos, version %d",
			metric, len(trials), res.MetricCalls, *res.BestScore, res.Demos, res.Version)
	}
	if s := score(t, c, id); s != 0.5 {
		t.Fatalf("the stored program scores %v on the 10 capitals, want 0.5", s)
	}

	// A cancel at the second trial stops the run; nothing is stored.
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	var cancelled time.Time
	_, err = c.Optimize(ctx, id, dspy.OptimizeConfig{Optimizer: "MIPROv2", Trainset: capitals, Metric: dspy.GoMetric("city_match"), Options: light,
		Progress: func(p dspy.Progress) {
			if p.Event == "trial" && p.Trial == 2 && cancelled.IsZero() {
				cancelled = time.Now()
				cancel()
			}
		}})
	if !errors.Is(err, mlbridge.ErrCancelled) || cancelled.IsZero() {
		t.Fatalf("got %v, want ErrCancelled at the second trial", err)
	}
	free := waitIdle(t, c, cancelled)
	if d, _ := c.Adapter().Get(bg, id); d.Version != 3 {
		t.Fatalf("a cancelled MIPROv2 run stored version %d", d.Version)
	}
	t.Logf("cancelled at the second trial; the worker's thread was free %v later", free.Round(time.Millisecond))
}
