package mlnats_test

import (
	"context"
	"testing"

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
