package dspy_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/dspy"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// openWithFuncs is a client on a fresh one-worker pool whose workers may call funcs.
func openWithFuncs(t *testing.T, funcs ...mlbridge.HostFunc) *dspy.Client {
	t.Helper()
	p, err := mlbridge.OpenPool(context.Background(), mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: dspy.Bridge, Python: testenv.Python(t), HostFuncs: funcs},
		Size:   1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return dspy.New(p)
}

// recorder keeps what a Go metric or reward was called with.
type recorder[T any] struct {
	mu    sync.Mutex
	calls []T
}

func (r *recorder[T]) add(v T) {
	r.mu.Lock()
	r.calls = append(r.calls, v)
	r.mu.Unlock()
}

func (r *recorder[T]) all() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// waitIdle waits until the worker has no abandoned handler thread left (a cancelled run
// really stopped in Python), failing after 5 s.
func waitIdle(t *testing.T, c *dspy.Client, since time.Time) time.Duration {
	t.Helper()
	for {
		h, err := mlbridge.Decode[struct {
			Abandoned int `msgpack:"abandoned"`
		}](c.Adapter().Call(context.Background(), "health_check", nil))
		if err != nil {
			t.Fatal(err)
		}
		if h.Abandoned == 0 {
			return time.Since(since)
		}
		if time.Since(since) > 5*time.Second {
			t.Fatalf("the Python side still runs %v after the cancel", time.Since(since))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A metric that is a Go function drives an optimizer and scores an Evaluate: the same trials
// and scores as the builtin exact match it reimplements, computed by Go for every example
// the program answered.
func TestGoMetricScoresExamples(t *testing.T) {
	ctx := context.Background()
	var seen recorder[dspy.MetricInput]
	cityMatch := dspy.MetricFunc("city_match", func(ctx context.Context, in dspy.MetricInput) (float64, error) {
		seen.add(in)
		got, _ := in.Prediction["answer"].(string)
		want, _ := in.Example["answer"].(string)
		if strings.EqualFold(strings.TrimSpace(got), want) {
			return 1, nil
		}
		return 0, nil
	})
	c := openWithFuncs(t, cityMatch)
	if err := c.ConfigureLM(ctx, followExamples); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateProgram(ctx, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	before, err := c.Evaluate(ctx, id, dspy.EvaluateConfig{Devset: capitals, Metric: dspy.GoMetric("city_match")})
	if err != nil {
		t.Fatal(err)
	}
	// Zero-shot, the follow-examples LM answers nothing: no prediction to score.
	if before.Score != 0 || len(seen.all()) != 0 {
		t.Fatalf("before: %+v, %d metric calls", before, len(seen.all()))
	}

	var trials []float64
	res, err := c.Optimize(ctx, id, dspy.OptimizeConfig{
		Optimizer: "BootstrapFewShotWithRandomSearch", Trainset: capitals, Metric: dspy.GoMetric("city_match"),
		Options: map[string]any{"max_labeled_demos": 4, "max_bootstrapped_demos": 2, "max_errors": 100, "num_candidate_programs": 2},
		Progress: func(e dspy.Progress) {
			if e.Event == "trial" {
				trials = append(trials, e.Score)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// What the builtin exact match gives in TestOptimizeStoresTheOptimizedProgram.
	if !slices.Equal(trials, []float64{0, 0.4, 0.4, 0.4, 0.4}) || res.Version != 2 || res.Demos != 4 {
		t.Fatalf("trials %v, result %+v", trials, res)
	}
	calls := seen.all()
	if len(calls) != res.MetricCalls || res.MetricCalls == 0 {
		t.Fatalf("the Go metric ran %d times, the optimizer reports %d metric calls", len(calls), res.MetricCalls)
	}
	for _, in := range calls {
		if q, _ := in.Example["question"].(string); !strings.HasPrefix(q, "capital of ") || in.Example["answer"] == nil || in.Prediction["answer"] == nil {
			t.Fatalf("the metric got %+v", in)
		}
	}

	n := len(calls)
	after, err := c.Evaluate(ctx, id, dspy.EvaluateConfig{Devset: capitals, Metric: dspy.GoMetric("city_match")})
	if err != nil {
		t.Fatal(err)
	}
	answered := 0
	for _, r := range after.Results {
		if !r.Failed {
			answered++
		}
	}
	if after.Score != 0.4 || answered != 4 || len(seen.all())-n != answered {
		t.Fatalf("after: score %v, %d answered, %d metric calls", after.Score, answered, len(seen.all())-n)
	}
	t.Logf("Go metric: score %.1f -> %.1f, trials %v, %d Go calls during the optimization", before.Score, after.Score, trials, n)
}

// A reward that is a Go function chooses among BestOfN's attempts: no attempt reaches the
// threshold, so every one is scored by Go and the best is the answer. Refine takes the
// attempt Go rewards fully.
func TestGoRewardChoosesAmongAttempts(t *testing.T) {
	ctx := context.Background()
	var seen recorder[dspy.RewardInput]
	scores := map[string]float64{"Lyon": 0.2, "Paris": 0.9, "Nice": 0.5}
	preferParis := dspy.RewardFunc("prefer_paris", func(ctx context.Context, in dspy.RewardInput) (float64, error) {
		seen.add(in)
		answer, _ := in.Prediction["answer"].(string)
		return scores[answer], nil
	})
	c := openWithFuncs(t, preferParis)
	answers := []map[string]any{{"answer": "Lyon"}, {"answer": "Paris"}, {"answer": "Nice"}}
	if err := c.ConfigureLM(ctx, dspy.LMConfig{Provider: "dummy", Answers: answers}); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateProgram(ctx, "question -> answer", dspy.WithModule("BestOfN"), dspy.WithAttempts(3),
		dspy.WithReward(dspy.GoReward("prefer_paris"), 1.0))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ExecuteProgram(ctx, id, map[string]any{"question": "capital of France?"})
	if err != nil {
		t.Fatal(err)
	}
	calls := seen.all()
	var scored []string
	for _, in := range calls {
		scored = append(scored, fmt.Sprint(in.Prediction["answer"]))
		if in.Inputs["question"] != "capital of France?" {
			t.Fatalf("the reward got inputs %v", in.Inputs)
		}
	}
	if got["answer"] != "Paris" || !slices.Equal(scored, []string{"Lyon", "Paris", "Nice"}) {
		t.Fatalf("answer %v; Go scored %v", got, scored)
	}

	// Refine: the first attempt scores low, DSPy asks the LM for advice, the second is rewarded fully.
	scores["Paris"] = 1
	refineAnswers := []map[string]any{{"answer": "Lyon"}, {"discussion": "wrong city", "advice": map[string]any{"self": "answer Paris"}}, {"answer": "Paris"}}
	if err := c.ConfigureLM(ctx, dspy.LMConfig{Provider: "dummy", Answers: refineAnswers}); err != nil {
		t.Fatal(err)
	}
	rid, err := c.CreateProgram(ctx, "question -> answer", dspy.WithModule("Refine"), dspy.WithAttempts(3),
		dspy.WithReward(dspy.GoReward("prefer_paris"), 1.0))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.ExecuteProgram(ctx, rid, map[string]any{"question": "capital of France?"}); err != nil || got["answer"] != "Paris" {
		t.Fatalf("Refine: %v %v", got, err)
	}
	if n := len(seen.all()) - len(calls); n != 2 {
		t.Fatalf("Refine: the Go reward ran %d times, want 2", n)
	}
}

// A Go metric or reward that fails ends the call with its error, typed, at once: DSPy does
// not count it as one failed example and carry on. A name the host did not register, a
// result that is not a number and a metric that is both builtin and Go are refused too.
func TestGoMetricAndRewardErrors(t *testing.T) {
	ctx := context.Background()
	var metricCalls recorder[int]
	noLabel := dspy.MetricFunc("needs_label", func(ctx context.Context, in dspy.MetricInput) (float64, error) {
		metricCalls.add(1)
		return 0, fmt.Errorf("%w: example %v has no label", mlbridge.ErrInvalidArgument, in.Example["question"])
	})
	broken := dspy.MetricFunc("broken", func(ctx context.Context, in dspy.MetricInput) (float64, error) {
		return 0, errors.New("the scoring service is down")
	})
	notANumber := mlbridge.Func("not_a_number", func(ctx context.Context, in dspy.MetricInput) (string, error) {
		return "high", nil
	})
	rewardDown := dspy.RewardFunc("reward_down", func(ctx context.Context, in dspy.RewardInput) (float64, error) {
		return 0, fmt.Errorf("%w: the judge model is overloaded", mlbridge.ErrUnavailable)
	})
	c := openWithFuncs(t, noLabel, broken, notANumber, rewardDown)
	// Every prompt gets an answer, so every example reaches the metric.
	lm := dspy.LMConfig{Provider: "dummy", AnswersByPrompt: map[string]map[string]any{"capital": {"answer": "Paris"}}}
	if err := c.ConfigureLM(ctx, lm); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateProgram(ctx, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	eval := func(m dspy.Metric) error {
		_, err := c.Evaluate(ctx, id, dspy.EvaluateConfig{Devset: capitals, Metric: m})
		return err
	}
	optimize := func(m dspy.Metric) error {
		_, err := c.Optimize(ctx, id, dspy.OptimizeConfig{Optimizer: "BootstrapFewShot", Trainset: capitals, Metric: m,
			Options: map[string]any{"max_errors": 100}})
		return err
	}
	for name, run := range map[string]func(dspy.Metric) error{"Evaluate": eval, "Optimize": optimize} {
		before := len(metricCalls.all())
		if err := run(dspy.GoMetric("needs_label")); !errors.Is(err, mlbridge.ErrInvalidArgument) || !strings.Contains(err.Error(), "has no label") {
			t.Errorf("%s, a Go metric's ErrInvalidArgument: %v", name, err)
		}
		if n := len(metricCalls.all()) - before; n != 1 {
			t.Errorf("%s went on after the Go metric failed: %d calls", name, n)
		}
		if err := run(dspy.GoMetric("broken")); !errors.Is(err, mlbridge.ErrInternal) || !strings.Contains(err.Error(), "the scoring service is down") {
			t.Errorf("%s, a Go metric's plain error: %v", name, err)
		}
		if err := run(dspy.GoMetric("not_a_number")); !errors.Is(err, mlbridge.ErrInvalidArgument) || !strings.Contains(err.Error(), "not a number") {
			t.Errorf("%s, a Go metric returning a string: %v", name, err)
		}
		if err := run(dspy.GoMetric("nope")); !errors.Is(err, mlbridge.ErrInvalidArgument) || !strings.Contains(err.Error(), `no host function named 'nope'`) {
			t.Errorf("%s, an unregistered Go metric: %v", name, err)
		}
		if err := run(dspy.Metric{Func: "broken", Builtin: "exact_match", Field: "answer"}); !errors.Is(err, mlbridge.ErrInvalidArgument) {
			t.Errorf("%s, a metric both Go and builtin: %v", name, err)
		}
	}

	rid, err := c.CreateProgram(ctx, "question -> answer", dspy.WithModule("BestOfN"), dspy.WithReward(dspy.GoReward("reward_down"), 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecuteProgram(ctx, rid, map[string]any{"question": "capital of France?"}); !errors.Is(err, mlbridge.ErrUnavailable) ||
		!strings.Contains(err.Error(), "overloaded") {
		t.Errorf("a Go reward's error: %v", err)
	}
	if _, err := c.CreateProgram(ctx, "question -> answer", dspy.WithModule("Refine"), dspy.WithReward(dspy.GoReward("nope"), 1)); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Errorf("a program naming an unregistered reward: %v", err)
	}
	if _, err := c.CreateProgram(ctx, "question -> answer", dspy.WithModule("BestOfN"),
		dspy.WithReward(dspy.Reward{Func: "reward_down", Builtin: "contains", Field: "answer", Target: "x"}, 1)); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Errorf("a reward both Go and builtin: %v", err)
	}
	// The worker is fine afterwards.
	if got, err := c.ExecuteProgram(ctx, id, map[string]any{"question": "capital of France?"}); err != nil || got["answer"] != "Paris" {
		t.Fatalf("after the errors: %v %v", got, err)
	}
}

// Cancelling an optimizer run from Go while it waits for a Go metric stops both sides: the Go
// metric's ctx ends, Optimize returns ErrCancelled, the optimizer's thread in Python ends,
// no later example is scored and nothing is stored.
func TestOptimizeCancelDuringAGoMetric(t *testing.T) {
	bg := context.Background()
	started := make(chan struct{}, 1)
	metricErr := make(chan error, 1)
	var calls recorder[int]
	slow := dspy.MetricFunc("slow_judge", func(ctx context.Context, in dspy.MetricInput) (float64, error) {
		calls.add(1)
		select {
		case started <- struct{}{}:
		default:
		}
		select {
		case <-ctx.Done():
			metricErr <- ctx.Err()
			return 0, ctx.Err()
		case <-time.After(30 * time.Second):
			metricErr <- nil
			return 1, nil
		}
	})
	c := openWithFuncs(t, slow)
	lm := dspy.LMConfig{Provider: "dummy", AnswersByPrompt: map[string]map[string]any{"capital": {"answer": "Paris"}}}
	if err := c.ConfigureLM(bg, lm); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateProgram(bg, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	go func() {
		<-started
		cancel()
	}()
	_, err = c.Optimize(ctx, id, dspy.OptimizeConfig{Optimizer: "BootstrapFewShot", Trainset: capitals, Metric: dspy.GoMetric("slow_judge")})
	cancelled := time.Now()
	if !errors.Is(err, mlbridge.ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want ErrCancelled", err)
	}
	select {
	case err := <-metricErr:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the Go metric's ctx: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the Go metric still runs 5s after the cancel")
	}
	free := waitIdle(t, c, cancelled)
	if n := len(calls.all()); n != 1 {
		t.Fatalf("the Go metric ran %d times; the run should have stopped at the first", n)
	}
	if d, _ := c.Adapter().Get(bg, id); d.Version != 1 || len(d.State) != 0 {
		t.Fatalf("a cancelled run stored version %d", d.Version)
	}
	t.Logf("the Go metric saw the cancel; the worker's thread was free %v after it", free.Round(time.Millisecond))
}
