package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/sklearn"
)

// runBatch measures dynamic batching: Concurrency callers each predict one row with a
// scikit-learn model through the typed client, on two pools of the same size — one batching
// predict as the bridge declares it, one with batching off (PoolConfig.Batching, Off: every
// call a one-row sklearn call, as before batching) — in alternating phases of one run.
func runBatch(ctx context.Context, o Options, python string) (*Report, error) {
	open := func(batching map[string]mlbridge.BatchPolicy) (*mlbridge.Pool, *sklearn.Client, error) {
		p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
			Config: mlbridge.Config{Bridge: sklearn.Bridge, Python: python, Logger: o.Logger, IdleSpin: o.IdleSpin},
			Size:   o.Workers, Preload: o.Preload, Batching: batching, QueueSize: max(1024, 2*o.Concurrency),
		})
		if err != nil {
			return nil, nil, err
		}
		c := sklearn.New(p)
		if err := c.CreateModel(ctx, "iris", sklearn.Estimator{Name: "StandardScaler"},
			sklearn.Estimator{Name: "LogisticRegression", Params: map[string]any{"max_iter": 500}}); err != nil {
			p.Close()
			return nil, nil, err
		}
		if _, err := c.FitDataset(ctx, "iris", "iris"); err != nil {
			p.Close()
			return nil, nil, err
		}
		return p, c, nil
	}
	pb, batched, err := open(nil)
	if err != nil {
		return nil, err
	}
	defer pb.Close()
	pu, unbatched, err := open(map[string]mlbridge.BatchPolicy{"predict": {Off: true}})
	if err != nil {
		return nil, err
	}
	defer pu.Close()

	ds, err := batched.LoadDataset(ctx, "iris")
	if err != nil {
		return nil, err
	}
	data, err := ds.X.Float64s()
	if err != nil {
		return nil, err
	}
	rows := make([]mlbridge.Array, len(data)/4)
	for i := range rows {
		if rows[i], err = mlbridge.Float64Array(data[4*i:4*i+4], 1, 4); err != nil {
			return nil, err
		}
	}
	var next atomic.Uint64 // callers predict the dataset's rows in turn
	call := func(c *sklearn.Client) callFunc {
		return func(ctx context.Context) error {
			row := rows[next.Add(1)%uint64(len(rows))]
			out, err := c.Predict(ctx, "iris", row)
			if err == nil && out.Len() != 1 {
				return fmt.Errorf("predict of one row returned %d values", out.Len())
			}
			return err
		}
	}
	phase := o.Duration / time.Duration(2*o.Rounds)
	// Warm up both (imports, caches, the model on every worker).
	concurrentCalls(ctx, call(batched), o.Concurrency, phase/4)
	concurrentCalls(ctx, call(unbatched), o.Concurrency, phase/4)
	var bLat, uLat latencies
	var bRates, uRates []float64
	var calls, errs int64
	for r := range o.Rounds {
		order := []*sklearn.Client{batched, unbatched}
		if r%2 == 1 { // alternate which goes first
			order[0], order[1] = order[1], order[0]
		}
		for _, c := range order {
			res := concurrentCalls(ctx, call(c), o.Concurrency, phase)
			if c == batched {
				bRates, bLat = append(bRates, res.rate), append(bLat, res.lat...)
			} else {
				uRates, uLat = append(uRates, res.rate), append(uLat, res.lat...)
			}
			calls += res.calls
			errs += res.errors
		}
	}
	st := pb.Stats().Batching["predict"]
	rep := &Report{
		Scenario: "batch", Workers: o.Workers, Concurrency: o.Concurrency, DurationS: o.Duration.Seconds(), Rounds: o.Rounds,
		Calls: calls, Errors: errs,
		BatchedCallsPerS: median(bRates), UnbatchedCallsPerS: median(uRates),
		BatchedP50us: micros(bLat.percentile(0.5)), BatchedP99us: micros(bLat.percentile(0.99)),
		UnbatchedP50us: micros(uLat.percentile(0.5)), UnbatchedP99us: micros(uLat.percentile(0.99)),
		BatchMaxSize: st.MaxSize, BatchMaxWaitUs: float64(st.MaxWait.Microseconds()),
	}
	if st.Batches > 0 {
		rep.MeanBatch = float64(st.Calls) / float64(st.Batches)
	}
	if rep.UnbatchedCallsPerS > 0 {
		rep.Speedup = rep.BatchedCallsPerS / rep.UnbatchedCallsPerS
	}
	return rep, nil
}
