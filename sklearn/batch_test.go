package sklearn_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/sklearn"
)

// TestSingleRowPredictsAreBatched: single-row predicts from 64 goroutines through the typed
// client (unchanged for its users) are served in batches, and each caller gets the prediction
// of its own row: the same as predicting all rows in one call. A caller with a bad row (3
// features for a 4-feature model) fails alone, with a typed error.
func TestSingleRowPredictsAreBatched(t *testing.T) {
	ctx := context.Background()
	c, p := open(t)
	if err := c.CreateModel(ctx, "iris", sklearn.Estimator{Name: "LogisticRegression", Params: map[string]any{"max_iter": 500}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.FitDataset(ctx, "iris", "iris"); err != nil {
		t.Fatal(err)
	}
	ds, err := c.LoadDataset(ctx, "iris")
	if err != nil {
		t.Fatal(err)
	}
	all, err := c.Predict(ctx, "iris", ds.X)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := all.Int64s()
	rows, _ := ds.X.Float64s()

	const callers, bad = 64, 17
	got := make([]int64, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := (i * 7) % 150 // rows from every class
			x, _ := mlbridge.Float64Array(rows[4*r:4*r+4], 1, 4)
			if i == bad {
				x, _ = mlbridge.Float64Array(rows[4*r:4*r+3], 1, 3)
			}
			out, err := c.Predict(ctx, "iris", x)
			if err != nil {
				errs[i] = err
				return
			}
			v, _ := out.Int64s()
			if len(v) != 1 {
				errs[i] = errors.New("not one prediction")
				return
			}
			got[i] = v[0]
		}()
	}
	wg.Wait()
	for i := range callers {
		if i == bad {
			if !errors.Is(errs[i], mlbridge.ErrInvalidArgument) {
				t.Fatalf("the caller with 3 features: %v", errs[i])
			}
			continue
		}
		if errs[i] != nil || got[i] != want[(i*7)%150] {
			t.Fatalf("caller %d (row %d): got %d, %v; want %d", i, (i*7)%150, got[i], errs[i], want[(i*7)%150])
		}
	}
	st := p.Stats().Batching["predict"]
	if st.Batches == 0 || st.Largest < 2 || st.Largest > st.MaxSize {
		t.Fatalf("predicts were not batched: %+v", st)
	}
	t.Logf("predict: %d calls in %d batches, largest %d (max %d)", st.Calls, st.Batches, st.Largest, st.MaxSize)
}
