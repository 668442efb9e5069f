package bench

import (
	"context"
	"time"

	"github.com/mlbridge/mlbridge"
)

// runPoolOverhead measures what pool dispatch adds to a call: one worker behind a Bridge
// and one behind a Pool of size 1, called one at a time in alternating phases of the same
// run, compared at p50.
func runPoolOverhead(ctx context.Context, o Options, python string) (*Report, error) {
	cfg := mlbridge.Config{Bridge: o.Bridge, Python: python, Logger: o.Logger, IdleSpin: o.IdleSpin}
	b, err := mlbridge.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{Config: cfg, Size: 1})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	direct := func(ctx context.Context) error { _, err := b.Call(ctx, "noop", nil); return err }
	pooled := func(ctx context.Context) error { _, err := p.Call(ctx, "noop", nil); return err }

	phase := o.Duration / time.Duration(2*o.Rounds)
	var dLat, pLat latencies
	var errs int64
	for range o.Rounds {
		l, e, err := sequentialCalls(ctx, direct, phase)
		if err != nil {
			return nil, err
		}
		dLat, errs = append(dLat, l...), errs+e
		l, e, err = sequentialCalls(ctx, pooled, phase)
		if err != nil {
			return nil, err
		}
		pLat, errs = append(pLat, l...), errs+e
	}
	rep := &Report{
		Scenario: "pool-overhead", Workers: 1, Concurrency: 1, DurationS: o.Duration.Seconds(), Rounds: o.Rounds,
		P50us: micros(pLat.percentile(0.5)), P99us: micros(pLat.percentile(0.99)),
		BridgeP50us: micros(dLat.percentile(0.5)), Calls: int64(len(dLat) + len(pLat)), Errors: errs,
	}
	if rep.BridgeP50us > 0 {
		rep.PoolOverheadPct = 100 * (rep.P50us - rep.BridgeP50us) / rep.BridgeP50us
	}
	return rep, nil
}
