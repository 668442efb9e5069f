package mlbridge_test

import (
	"context"
	"errors"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/mlbridge/mlbridge"
)

// The pool's bookkeeping of a finished call, alone: what every call pays for Stats and the
// OpenTelemetry instruments, with the global (no-op) provider and with an SDK one.
func BenchmarkPoolRecord(b *testing.B) {
	b.Run("noop-provider", func(b *testing.B) { benchRecord(b, openPool(b)) })
	b.Run("sdk-provider", func(b *testing.B) {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		benchRecord(b, openPool(b, func(c *mlbridge.PoolConfig) { c.MeterProvider = mp }))
	})
}

func benchRecord(b *testing.B, p *mlbridge.Pool) {
	ctx := context.Background()
	start := time.Now()
	failed := errors.New("failed")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			var err error
			if i++; i%8 == 0 {
				err = failed
			}
			p.RecordCall(ctx, "noop", start, err)
		}
	})
}

// BenchmarkPoolCallNoop is one call at a time through a pool of one worker.
func BenchmarkPoolCallNoop(b *testing.B) {
	b.Run("noop-provider", func(b *testing.B) { benchPoolCall(b, openPool(b, func(c *mlbridge.PoolConfig) { c.Size = 1 })) })
	b.Run("sdk-provider", func(b *testing.B) {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		benchPoolCall(b, openPool(b, func(c *mlbridge.PoolConfig) { c.Size, c.MeterProvider = 1, mp }))
	})
}

func benchPoolCall(b *testing.B, p *mlbridge.Pool) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Call(ctx, "noop", nil); err != nil {
			b.Fatal(err)
		}
	}
}
