package mlbridge_test

import (
	"context"
	"testing"
)

// BenchmarkCallNoop is one call at a time through the whole stack: Go API, wire, pipes,
// Python runtime, and back. Compare with `mlbridge bench`, which also measures the floor.
func BenchmarkCallNoop(b *testing.B) {
	br := open(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := br.Call(ctx, "noop", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallNoopParallel is many goroutines sharing one worker.
func BenchmarkCallNoopParallel(b *testing.B) {
	br := open(b)
	ctx := context.Background()
	b.SetParallelism(32)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := br.Call(ctx, "noop", nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
