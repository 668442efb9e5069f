package sklearn_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/sklearn"
	"github.com/mlbridge/mlbridge/store"
)

func open(t testing.TB, mutate ...func(*mlbridge.Config)) (*sklearn.Client, *mlbridge.Pool) {
	t.Helper()
	return openPool(t, nil, mutate...)
}

// openPool is open with batching overrides.
func openPool(t testing.TB, batching map[string]mlbridge.BatchPolicy, mutate ...func(*mlbridge.Config)) (*sklearn.Client, *mlbridge.Pool) {
	t.Helper()
	cfg := mlbridge.Config{Bridge: sklearn.Bridge, Python: testenv.Python(t)}
	for _, m := range mutate {
		m(&cfg)
	}
	p, err := mlbridge.OpenPool(context.Background(), mlbridge.PoolConfig{Config: cfg, Size: 1, Batching: batching})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return sklearn.New(p), p
}

// Train on a bundled dataset, predict with binary arrays; the trained state lives in the host
// store, so the model still predicts the same after its worker was killed.
func TestTrainPredictSurviveWorkerLoss(t *testing.T) {
	ctx := context.Background()
	c, p := open(t)
	if err := c.CreateModel(ctx, "iris", sklearn.Estimator{Name: "StandardScaler"},
		sklearn.Estimator{Name: "LogisticRegression", Params: map[string]any{"max_iter": 500}}); err != nil {
		t.Fatal(err)
	}
	fit, err := c.FitDataset(ctx, "iris", "iris")
	if err != nil || fit.Samples != 150 || fit.Features != 4 || len(fit.State) == 0 {
		t.Fatalf("fit: %+v %v", fit, err)
	}
	ds, err := c.LoadDataset(ctx, "iris")
	if err != nil || ds.X.DType != "float64" || !slices.Equal(ds.X.Shape, []int{150, 4}) {
		t.Fatalf("dataset: %+v %v", ds.X.Shape, err)
	}
	before, err := c.Predict(ctx, "iris", ds.X)
	if err != nil || before.Len() != 150 {
		t.Fatalf("predict: %+v %v", before, err)
	}
	score, err := c.Score(ctx, "iris", ds.X, ds.Y)
	if err != nil || score < 0.9 || score > 1 {
		t.Fatalf("score %v %v", score, err)
	}
	proba, err := c.PredictProba(ctx, "iris", ds.X)
	if err != nil || !slices.Equal(proba.Shape, []int{150, 3}) {
		t.Fatalf("proba: %v %v", proba.Shape, err)
	}

	old := p.Stats().Workers[0].Pid
	_ = syscall.Kill(old, syscall.SIGKILL)
	var after mlbridge.Array
	for {
		after, err = c.Predict(ctx, "iris", ds.X)
		if !errors.Is(err, mlbridge.ErrWorkerExited) {
			break // a call that raced the kill may see the death; the next one must not
		}
	}
	if err != nil || p.Stats().Workers[0].Pid == old {
		t.Fatalf("after the worker was killed: %v", err)
	}
	b, _ := before.Int64s()
	a, _ := after.Int64s()
	if !slices.Equal(a, b) {
		t.Fatal("predictions changed after the model was rebuilt from its stored state")
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	c, _ := open(t)
	if err := c.CreateModel(ctx, "x", sklearn.Estimator{Name: "os.system"}); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("an import path as estimator: %v", err)
	}
	if err := c.CreateModel(ctx, "x", sklearn.Estimator{Name: "Ridge", Params: map[string]any{"no_such_param": 1}}); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("bad params: %v", err)
	}
	if err := c.CreateModel(ctx, "lin", sklearn.Estimator{Name: "LinearRegression"}); err != nil {
		t.Fatal(err)
	}
	x, _ := mlbridge.Float64Array([]float64{1, 2, 3, 4}, 2, 2)
	if _, err := c.Predict(ctx, "lin", x); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("unfitted model: %v", err)
	}
	if _, err := c.Predict(ctx, "nope", x); !errors.Is(err, mlbridge.ErrNotFound) {
		t.Fatalf("unknown model: %v", err)
	}
	bad := mlbridge.Array{DType: "float64", Shape: []int{2, 2}, Data: make([]byte, 7)}
	if _, err := c.Fit(ctx, "lin", bad, x); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("short array: %v", err)
	}
}

func randomArray(rows, cols int) mlbridge.Array {
	data := make([]float64, rows*cols)
	for i := range data {
		data[i] = rand.NormFloat64()
	}
	a, _ := mlbridge.Float64Array(data, rows, cols)
	return a
}

// Predict on a 10k x 64 float64 array (5.1 MB): MB/s through the bridge. Compare with the same
// predict in-process: python/benchmarks/sklearn_predict.py (docs/BENCHMARKS.md).
// BenchmarkPredict10kx64: the 5.1 MB input through shared memory (the default: predict is
// batched, and so large a call bypasses its batch), the same with predict's batching off, and
// through the pipe (shared memory off), in one run.
func BenchmarkPredict10kx64(b *testing.B) {
	b.Run("shared", func(b *testing.B) { benchPredict(b, nil) })
	b.Run("shared-batching-off", func(b *testing.B) {
		benchPredict(b, map[string]mlbridge.BatchPolicy{"predict": {Off: true}})
	})
	b.Run("pipe", func(b *testing.B) { benchPredict(b, nil, func(c *mlbridge.Config) { c.SharedMemoryMin = -1 }) })
	b.Run("pipe-batching-off", func(b *testing.B) {
		benchPredict(b, map[string]mlbridge.BatchPolicy{"predict": {Off: true}}, func(c *mlbridge.Config) { c.SharedMemoryMin = -1 })
	})
}

func benchPredict(b *testing.B, batching map[string]mlbridge.BatchPolicy, mutate ...func(*mlbridge.Config)) {
	ctx := context.Background()
	c, _ := openPool(b, batching, mutate...)
	if err := c.CreateModel(ctx, "ridge", sklearn.Estimator{Name: "Ridge"}); err != nil {
		b.Fatal(err)
	}
	x := randomArray(10_000, 64)
	yData := make([]float64, 10_000)
	y, _ := mlbridge.Float64Array(yData)
	if _, err := c.Fit(ctx, "ridge", x, y); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(x.Data)))
	for b.Loop() {
		if _, err := c.Predict(ctx, "ridge", x); err != nil {
			b.Fatal(err)
		}
	}
}

// redefiningAdapter redefines a model right after its fit ran on a worker and before Fit
// stores the trained state: another writer's change landing mid-training.
type redefiningAdapter struct {
	mlbridge.Adapter
	redefine func(ctx context.Context) error
}

func (a redefiningAdapter) Call(ctx context.Context, op string, args any, opts ...mlbridge.CallOption) (mlbridge.Result, error) {
	res, err := a.Adapter.Call(ctx, op, args, opts...)
	if op == "fit" && err == nil {
		if rerr := a.redefine(ctx); rerr != nil {
			return res, rerr
		}
	}
	return res, err
}

// TestFitKeepsAConcurrentRedefinition: a model redefined while Fit trained it keeps the new
// definition; Fit fails with store.ErrConflict instead of writing the old spec back with a
// state trained from it. Fit again trains the new definition and stores its state.
func TestFitKeepsAConcurrentRedefinition(t *testing.T) {
	ctx := context.Background()
	_, p := open(t)
	newSpec := map[string]any{"estimator": "LogisticRegression", "params": map[string]any{"C": 0.5, "max_iter": 300}}
	redefined := 0
	c := sklearn.New(redefiningAdapter{Adapter: p, redefine: func(ctx context.Context) error {
		if redefined > 0 {
			return nil
		}
		redefined++
		_, err := p.Create(ctx, store.Definition{ID: "m", Kind: "model", Spec: newSpec})
		return err
	}})
	if err := c.CreateModel(ctx, "m", sklearn.Estimator{Name: "LogisticRegression", Params: map[string]any{"max_iter": 200}}); err != nil {
		t.Fatal(err)
	}
	_, err := c.FitDataset(ctx, "m", "iris")
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("fit over a redefined model: %v, want store.ErrConflict", err)
	}
	d, err := p.Get(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	if params, _ := d.Spec["params"].(map[string]any); params["C"] != 0.5 || len(d.State) != 0 {
		t.Fatalf("stored after the conflict: spec %v, %d bytes of state; want the redefinition, untrained", d.Spec, len(d.State))
	}
	fit, err := c.FitDataset(ctx, "m", "iris")
	if err != nil || fit.Samples != 150 {
		t.Fatalf("fit again: %+v %v", fit, err)
	}
	d2, err := p.Get(ctx, "m")
	if err != nil || d2.Version <= d.Version || len(d2.State) == 0 {
		t.Fatalf("after the second fit: version %d (was %d), %d bytes of state, %v", d2.Version, d.Version, len(d2.State), err)
	}
	if params, _ := d2.Spec["params"].(map[string]any); params["C"] != 0.5 {
		t.Fatalf("the second fit stored spec %v, want the redefinition's", d2.Spec)
	}
}
