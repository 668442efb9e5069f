package mlnats_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/dspy"
	"github.com/mlbridge/mlbridge/langchain"
	"github.com/mlbridge/mlbridge/mlnats"
	"github.com/mlbridge/mlbridge/sklearn"
	"github.com/mlbridge/mlbridge/store"
)

// The typed clients take any mlbridge.Adapter: these tests run each one over a Remote whose
// node serves a real pool of the framework's bridge, as an application on another machine
// would.

// serveBridge starts a node serving a one-worker pool of bridge class under name and returns
// a Remote dialled to it, and the pool (for comparisons with local calls).
func serveBridge(t *testing.T, e *mlnats.Embedded, name, class string) (*mlnats.Remote, *mlbridge.Pool) {
	t.Helper()
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.Bridge = class })
	n, err := mlnats.NewNode(connect(t, e), mlnats.NodeConfig{Adapters: map[string]mlbridge.Adapter{name: p}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := mlnats.Dial(ctx, connect(t, e), name, mlnats.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r, p
}

// TestSklearnOverRemote: fit, predict, predict_proba and score through a Remote give what the
// same calls give on a local pool, with the trained state stored through the node.
func TestSklearnOverRemote(t *testing.T) {
	e := embedded(t)
	r, local := serveBridge(t, e, "sklearn", sklearn.Bridge)
	ctx := context.Background()
	// Two well-separated classes of three points each in two features.
	x, err := mlbridge.Float64Array([]float64{0, 0, 0.2, 0.1, 0.1, 0.3, 5, 5, 5.2, 4.9, 4.8, 5.1}, 6, 2)
	if err != nil {
		t.Fatal(err)
	}
	y, _ := mlbridge.Int64Array([]int64{0, 0, 0, 1, 1, 1}, 6)
	probe, _ := mlbridge.Float64Array([]float64{0.1, 0.1, 5, 5, 2.4, 2.6}, 3, 2)

	type outcome struct {
		fit   sklearn.FitResult
		pred  []int64
		proba []float64
		shape []int
		score float64
	}
	run := func(c *sklearn.Client, id string) outcome {
		t.Helper()
		if err := c.CreateModel(ctx, id, sklearn.Estimator{Name: "LogisticRegression", Params: map[string]any{"max_iter": 200}}); err != nil {
			t.Fatal(err)
		}
		fit, err := c.Fit(ctx, id, x, y)
		if err != nil {
			t.Fatalf("fit: %v", err)
		}
		pred, err := c.Predict(ctx, id, probe)
		if err != nil {
			t.Fatalf("predict: %v", err)
		}
		proba, err := c.PredictProba(ctx, id, probe)
		if err != nil {
			t.Fatalf("predict_proba: %v", err)
		}
		score, err := c.Score(ctx, id, x, y)
		if err != nil {
			t.Fatalf("score: %v", err)
		}
		o := outcome{fit: fit, score: score, shape: proba.Shape}
		if o.pred, err = pred.Int64s(); err != nil {
			t.Fatal(err)
		}
		if o.proba, err = proba.Float64s(); err != nil {
			t.Fatal(err)
		}
		return o
	}
	remote := run(sklearn.New(r), "remote-lr")
	// The same model on the node's own pool, without NATS in between.
	direct := run(sklearn.New(local), "direct-lr")
	t.Logf("remote: fit %d samples, predict %v, proba %v, score %v", remote.fit.Samples, remote.pred, remote.proba, remote.score)

	if remote.fit.Samples != 6 || remote.fit.Features != 2 || len(remote.fit.State) == 0 {
		t.Fatalf("fit over the remote: %+v", remote.fit)
	}
	if !slices.Equal(remote.pred[:2], []int64{0, 1}) {
		t.Fatalf("predictions %v, want class 0 then 1 for the first two probes", remote.pred)
	}
	if !slices.Equal(remote.shape, []int{3, 2}) || remote.score != 1 {
		t.Fatalf("proba shape %v, score %v", remote.shape, remote.score)
	}
	if !slices.Equal(remote.pred, direct.pred) || !slices.Equal(remote.proba, direct.proba) || remote.score != direct.score {
		t.Fatalf("remote and local disagree: %+v vs %+v", remote, direct)
	}
	// The trained state went into the store through the node.
	d, err := r.Get(ctx, "remote-lr")
	if err != nil || len(d.State) == 0 {
		t.Fatalf("stored model: %d bytes of state, %v", len(d.State), err)
	}
	// A model that does not exist: the typed error crosses the wire.
	if _, err := sklearn.New(r).Predict(ctx, "nope", probe); !errors.Is(err, store.ErrNotFound) && !errors.Is(err, mlbridge.ErrNotFound) {
		t.Fatalf("predict on an unknown model: %v", err)
	}
}

func dummyAnswers(n int) []map[string]any {
	a := make([]map[string]any, n)
	for i := range a {
		a[i] = map[string]any{"reasoning": "because", "answer": "Paris"}
	}
	return a
}

// TestDSPyOverRemote: the dspy client configures DSPy's DummyLM on the node's workers and
// creates, executes, describes, lists and deletes programs through a Remote.
func TestDSPyOverRemote(t *testing.T) {
	e := embedded(t)
	r, local := serveBridge(t, e, "dspy", dspy.Bridge)
	ctx := context.Background()
	c := dspy.New(r)
	if err := c.ConfigureLM(ctx, dspy.LMConfig{Provider: "dummy", Answers: dummyAnswers(20)}); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateProgram(ctx, "question -> answer", dspy.WithModule("ChainOfThought"), dspy.WithInstructions("Answer briefly."))
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.ExecuteProgram(ctx, id, map[string]any{"question": "capital of France?"})
	if err != nil || out["answer"] != "Paris" {
		t.Fatalf("execute over the remote: %v %v", out, err)
	}
	info, err := c.GetProgramInfo(ctx, id)
	if err != nil || info.ID != id || info.Module != "ChainOfThought" || info.Signature != "question -> answer" || info.Instructions != "Answer briefly." {
		t.Fatalf("info: %+v %v", info, err)
	}
	named, err := c.CreateProgram(ctx, "question -> answer", dspy.WithID("named"))
	if err != nil || named != "named" {
		t.Fatalf("WithID: %q %v", named, err)
	}
	// WithID checks that the id is free, through the remote's store.
	if _, err := c.CreateProgram(ctx, "q -> a", dspy.WithID("named")); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("a taken id: %v", err)
	}
	ids, err := c.ListPrograms(ctx)
	if want := slices.Sorted(slices.Values([]string{id, "named"})); err != nil || !slices.Equal(ids, want) {
		t.Fatalf("list over the remote: %v %v, want %v", ids, err, want)
	}
	// The node's pool sees the same programs: the remote wrote them to its store.
	if localIDs, err := dspy.New(local).ListPrograms(ctx); err != nil || !slices.Equal(localIDs, ids) {
		t.Fatalf("list on the node's pool: %v %v", localIDs, err)
	}
	if err := c.DeleteProgram(ctx, "named"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetProgramInfo(ctx, "named"); !errors.Is(err, mlbridge.ErrNotFound) && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("info of a deleted program: %v", err)
	}
	if _, err := c.ExecuteProgram(ctx, id, map[string]any{"wrong": "field"}); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("execute with a missing input: %v", err)
	}
}

// TestLangChainOverRemote: a fake chat model and a chain on it, created through a Remote,
// invoked, streamed chunk by chunk and chatted with.
func TestLangChainOverRemote(t *testing.T) {
	e := embedded(t)
	r, _ := serveBridge(t, e, "langchain", langchain.Bridge)
	ctx := context.Background()
	c := langchain.New(r)
	if err := c.CreateModel(ctx, "fake", langchain.ModelConfig{Provider: "fake", Responses: []string{"the sea is wide and deep"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateChain(ctx, "poem", langchain.ChainConfig{Model: "fake", Messages: []langchain.Message{
		{Role: "system", Content: "You are a poet."}, {Role: "human", Content: "A line about {topic}."},
	}}); err != nil {
		t.Fatal(err)
	}
	got, err := mlbridge.Decode[string](c.Invoke(ctx, "poem", map[string]any{"topic": "the sea"}))
	if err != nil || got != "the sea is wide and deep" {
		t.Fatalf("invoke over the remote: %q %v", got, err)
	}
	var chunks []string
	for s, err := range c.Stream(ctx, "poem", map[string]any{"topic": "the sea"}) {
		if err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, s)
	}
	if len(chunks) < 2 || strings.Join(chunks, "") != "the sea is wide and deep" {
		t.Fatalf("stream over the remote: %q", chunks)
	}
	t.Logf("streamed %d chunks over NATS", len(chunks))
	if _, err := c.Invoke(ctx, "poem", map[string]any{}); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("missing variable: %v", err)
	}
	if err := c.CreateChain(ctx, "orphan", langchain.ChainConfig{Model: "nope", Template: "{x}"}); !errors.Is(err, mlbridge.ErrNotFound) {
		t.Fatalf("chain on an undefined model: %v", err)
	}
	reply, err := c.Chat("fake", "Be brief.").Send(ctx, "hello")
	if err != nil || reply != "the sea is wide and deep" {
		t.Fatalf("chat over the remote: %q %v", reply, err)
	}
}
