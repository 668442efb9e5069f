package bench

import (
	"context"
	"time"

	"github.com/mlbridge/mlbridge"
)

// runCallback measures a host call's cost: a Go→Python call whose handler makes one
// Python→Go call (host_call of a Go no-op) against a plain Go→Python no-op, on one pool of one
// worker, in alternating phases of the same run, compared at p50.
func runCallback(ctx context.Context, o Options, python string) (*Report, error) {
	noopFn := mlbridge.Func("noop", func(context.Context, struct{}) (bool, error) { return true, nil })
	cfg := mlbridge.Config{Bridge: o.Bridge, Python: python, Logger: o.Logger, IdleSpin: o.IdleSpin,
		HostFuncs: []mlbridge.HostFunc{noopFn}}
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{Config: cfg, Size: 1})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	args := map[string]any{"fn": "noop"}
	noop := func(ctx context.Context) error { _, err := p.Call(ctx, "noop", nil); return err }
	callback := func(ctx context.Context) error { _, err := p.Call(ctx, "host_call", args); return err }

	phase := o.Duration / time.Duration(2*o.Rounds)
	var nLat, cLat latencies
	var errs int64
	for range o.Rounds {
		l, e, err := sequentialCalls(ctx, noop, phase)
		if err != nil {
			return nil, err
		}
		nLat, errs = append(nLat, l...), errs+e
		l, e, err = sequentialCalls(ctx, callback, phase)
		if err != nil {
			return nil, err
		}
		cLat, errs = append(cLat, l...), errs+e
	}
	rep := &Report{
		Scenario: "callback", Workers: 1, Concurrency: 1, DurationS: o.Duration.Seconds(), Rounds: o.Rounds,
		P50us: micros(cLat.percentile(0.5)), P99us: micros(cLat.percentile(0.99)),
		NoopP50us: micros(nLat.percentile(0.5)), NoopP99us: micros(nLat.percentile(0.99)),
		Calls: int64(len(nLat) + len(cLat)), Errors: errs,
	}
	if rep.NoopP50us > 0 {
		rep.RatioP50 = rep.P50us / rep.NoopP50us
	}
	return rep, nil
}
