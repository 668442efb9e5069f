package mlnats_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
)

// BenchmarkRemotePool is a no-op through one node to its pool of one worker;
// BenchmarkLocalPool the same no-op on such a pool directly.
func BenchmarkRemotePool(b *testing.B) {
	e, err := mlnats.StartEmbedded(mlnats.EmbeddedConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	p := benchPool(b)
	nnc := benchConn(b, e)
	n, err := mlnats.NewNode(nnc, mlnats.NodeConfig{Adapters: map[string]mlbridge.Adapter{"echo": p}, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	r, err := mlnats.Dial(context.Background(), benchConn(b, e), "echo", mlnats.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		if _, err := r.Call(ctx, "noop", nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLocalPool(b *testing.B) {
	p := benchPool(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := p.Call(ctx, "noop", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// timedAdapter records how long each Call took on the node.
type timedAdapter struct {
	mlbridge.Adapter
	mu   sync.Mutex
	took []time.Duration
}

func (t *timedAdapter) Call(ctx context.Context, op string, args any, opts ...mlbridge.CallOption) (mlbridge.Result, error) {
	start := time.Now()
	r, err := t.Adapter.Call(ctx, op, args, opts...)
	t.mu.Lock()
	t.took = append(t.took, time.Since(start))
	t.mu.Unlock()
	return r, err
}

func p50(d []time.Duration) float64 {
	slices.Sort(d)
	return float64(d[len(d)/2].Nanoseconds()) / 1e3
}

// BenchmarkRemotePoolSplit is BenchmarkRemotePool reporting medians, not means (the tail of
// a shared machine dominates the mean): p50-us is the remote call, node-pool-p50-us the
// pool call inside it on the node; the difference is what NATS and mlnats add.
func BenchmarkRemotePoolSplit(b *testing.B) {
	e, err := mlnats.StartEmbedded(mlnats.EmbeddedConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	ta := &timedAdapter{Adapter: benchPool(b)}
	n, err := mlnats.NewNode(benchConn(b, e), mlnats.NodeConfig{Adapters: map[string]mlbridge.Adapter{"echo": ta}, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	r, err := mlnats.Dial(context.Background(), benchConn(b, e), "echo", mlnats.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var took []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := r.Call(ctx, "noop", nil); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	b.ReportMetric(p50(took), "p50-us")
	ta.mu.Lock()
	b.ReportMetric(p50(ta.took), "node-pool-p50-us")
	ta.mu.Unlock()
}

// BenchmarkLocalPoolGap is the no-op on a local pool with a 40 µs pause before each call,
// about what the NATS legs of a remote call take: spent spinning (the process stays busy)
// or sleeping (it goes idle, as a node does while a call crosses NATS). It separates the
// cost of the pool call from the cost of waking an idle process (docs/DISTRIBUTED.md).
func BenchmarkLocalPoolGap(b *testing.B) {
	const gap = 40 * time.Microsecond
	for _, c := range []struct {
		name  string
		pause func()
	}{
		{"none", func() {}},
		{"spin-40us", func() {
			for start := time.Now(); time.Since(start) < gap; {
			}
		}},
		{"sleep-40us", func() { time.Sleep(gap) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := benchPool(b)
			ctx := context.Background()
			var took []time.Duration
			for b.Loop() {
				c.pause()
				start := time.Now()
				if _, err := p.Call(ctx, "noop", nil); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			b.ReportMetric(p50(took), "p50-us")
		})
	}
}
