package sklearn_test

import (
	"context"
	"math"
	"sync"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/sklearn"
)

// TestLargePredictBypassesBatching: a predict whose X (1.28 MB) is past MaxFrame (1 MiB) but
// above SharedMemoryMin succeeds with predict batched (the default): it is sent as an ordinary
// call, through shared memory, while single-row predicts made at the same time still go in
// batches. Each answer is right: a big X's first rows predict what they predict alone.
func TestLargePredictBypassesBatching(t *testing.T) {
	ctx := context.Background()
	c, p := open(t, func(cfg *mlbridge.Config) { cfg.MaxFrame = 1 << 20 })
	if err := c.CreateModel(ctx, "ridge", sklearn.Estimator{Name: "Ridge"}); err != nil {
		t.Fatal(err)
	}
	y, _ := mlbridge.Float64Array(make([]float64, 100))
	yv, _ := y.Float64s()
	for i := range yv {
		yv[i] = float64(i % 7)
	}
	y, _ = mlbridge.Float64Array(yv)
	if _, err := c.Fit(ctx, "ridge", randomArray(100, 4), y); err != nil {
		t.Fatal(err)
	}
	const small, large = 32, 2
	bigs := make([]mlbridge.Array, large)
	for i := range bigs {
		bigs[i] = randomArray(40_000, 4) // 1.28 MB
	}
	rows := randomArray(small, 4)
	rowv, _ := rows.Float64s()

	smallOut := make([]float64, small)
	bigOut := make([][]float64, large)
	errs := make([]error, small+large)
	var wg sync.WaitGroup
	for i := range small + large {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := func() mlbridge.Array {
				if i >= small {
					return bigs[i-small]
				}
				a, _ := mlbridge.Float64Array(rowv[4*i:4*i+4], 1, 4)
				return a
			}()
			out, err := c.Predict(ctx, "ridge", x)
			if err != nil {
				errs[i] = err
				return
			}
			v, err := out.Float64s()
			switch {
			case err != nil:
				errs[i] = err
			case i >= small:
				bigOut[i-small] = v
			case len(v) == 1:
				smallOut[i] = v[0]
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d (large: %v): %v", i, i >= small, err)
		}
	}
	for k, v := range bigOut {
		if len(v) != 40_000 {
			t.Fatalf("large predict %d: %d predictions", k, len(v))
		}
		bv, _ := bigs[k].Float64s()
		first, _ := mlbridge.Float64Array(bv[:4], 1, 4)
		alone, err := c.Predict(ctx, "ridge", first)
		if err != nil {
			t.Fatal(err)
		}
		av, _ := alone.Float64s()
		if math.Abs(av[0]-v[0]) > 1e-9*max(1, math.Abs(av[0])) {
			t.Fatalf("large predict %d: row 0 predicted %v, alone %v", k, v[0], av[0])
		}
	}
	st := p.Stats().Batching["predict"]
	// the small ones, and the 2 single-row checks: the large ones never joined a batch
	if st.Batches == 0 || st.Calls != small+large {
		t.Fatalf("batching stats %+v: want batches, and %d batched calls", st, small+large)
	}
	t.Logf("predict: %d calls in %d batches, largest %d; 2 large predicts sent alone", st.Calls, st.Batches, st.Largest)
}

// TestLargePredictBypassesBatchingWithoutSharedMemory: with shared memory off, a predict with
// a 400 kB X (above the default SharedMemoryMin) is still sent alone, as an ordinary call
// through the pipe, while a single-row predict is batched.
func TestLargePredictBypassesBatchingWithoutSharedMemory(t *testing.T) {
	ctx := context.Background()
	c, p := open(t, func(cfg *mlbridge.Config) { cfg.SharedMemoryMin = -1 })
	if err := c.CreateModel(ctx, "ridge", sklearn.Estimator{Name: "Ridge"}); err != nil {
		t.Fatal(err)
	}
	y, _ := mlbridge.Float64Array(make([]float64, 100))
	if _, err := c.Fit(ctx, "ridge", randomArray(100, 4), y); err != nil {
		t.Fatal(err)
	}
	out, err := c.Predict(ctx, "ridge", randomArray(12_500, 4)) // 400 kB
	if err != nil || len(out.Shape) != 1 || out.Shape[0] != 12_500 {
		t.Fatalf("large predict: shape %v, %v", out.Shape, err)
	}
	if _, err := c.Predict(ctx, "ridge", randomArray(1, 4)); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats().Batching["predict"]; st.Calls != 1 || st.Batches != 1 {
		t.Fatalf("batching stats %+v: want only the single-row predict batched", st)
	}
}
