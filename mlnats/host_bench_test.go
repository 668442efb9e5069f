package mlnats_test

import (
	"context"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/mlnats"
)

// BenchmarkRemoteHostCall: a remote call whose Python handler makes one host call into the
// client (host_call), against a remote no-op on the same node and client (noop).
func BenchmarkRemoteHostCall(b *testing.B) {
	e, err := mlnats.StartEmbedded(mlnats.EmbeddedConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	one := mlbridge.Func("one", func(context.Context, struct{}) (int, error) { return 1, nil })
	ctx := context.Background()
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{Config: mlbridge.Config{Bridge: testenv.EchoBridge,
		Python: testenv.Python(b), Logger: quiet, HostFuncs: []mlbridge.HostFunc{mlnats.ForwardFunc(one)}}, Size: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	n, err := mlnats.NewNode(benchConn(b, e), mlnats.NodeConfig{Adapters: map[string]mlbridge.Adapter{"echo": p}, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	r, err := mlnats.Dial(ctx, benchConn(b, e), "echo", mlnats.Options{Logger: quiet, HostFuncs: []mlbridge.HostFunc{one}})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.Run("noop", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.Call(ctx, "noop", nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("host_call", func(b *testing.B) {
		args := map[string]any{"fn": "one"}
		for b.Loop() {
			if _, err := r.Call(ctx, "host_call", args); err != nil {
				b.Fatal(err)
			}
		}
	})
}
