package bench

import (
	"context"
	"time"

	"github.com/mlbridge/mlbridge"
)

// runStartup measures how long a pool takes to be ready — every worker past its handshake,
// not merely spawned — with 1 worker and with 8, alternating, and reports the ratio of the
// medians.
func runStartup(ctx context.Context, o Options, python string) (*Report, error) {
	cfg := mlbridge.Config{Bridge: o.Bridge, Python: python, Logger: o.Logger}
	open := func(n int) (time.Duration, error) {
		t0 := time.Now()
		p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{Config: cfg, Size: n, Preload: o.Preload})
		if err != nil {
			return 0, err
		}
		d := time.Since(t0)
		return d, p.Close()
	}
	var one, eight []float64
	for range max(o.Rounds, 3) {
		d1, err := open(1)
		if err != nil {
			return nil, err
		}
		d8, err := open(8)
		if err != nil {
			return nil, err
		}
		one = append(one, float64(d1.Microseconds())/1e3)
		eight = append(eight, float64(d8.Microseconds())/1e3)
	}
	rep := &Report{Scenario: "startup", Workers: 8, Rounds: max(o.Rounds, 3), Startup1ms: median(one), Startup8ms: median(eight)}
	if rep.Startup1ms > 0 {
		rep.StartupRatio = rep.Startup8ms / rep.Startup1ms
	}
	return rep, nil
}
