package mlbridge_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
)

// BenchmarkHostCall is one call at a time whose Python handler makes one host call of a Go
// no-op: from an async handler (await host.call) and from a sync one, on a thread
// (host.call_sync). Compare with BenchmarkCallNoop, a call without the host call; `mlbridge
// bench --scenario callback` alternates the async form with a no-op.
func BenchmarkHostCall(b *testing.B) {
	noop := mlbridge.Func("noop", func(context.Context, struct{}) (bool, error) { return true, nil })
	p := openPool(b, func(c *mlbridge.PoolConfig) { c.Size = 1; c.HostFuncs = []mlbridge.HostFunc{noop} })
	ctx := context.Background()
	for _, op := range []string{"host_call", "host_call_sync"} {
		b.Run(op, func(b *testing.B) {
			args := map[string]any{"fn": "noop"}
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				if _, err := p.Call(ctx, op, args); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			// the median too: on a shared machine the mean follows the scheduler's tail
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
		})
	}
}
