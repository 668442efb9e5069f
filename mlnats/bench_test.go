package mlnats_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
)

// instant is an adapter whose calls return at once: what the remote path itself costs.
type instant struct{ mlbridge.Adapter }

func (instant) Info() mlbridge.Info { return mlbridge.Info{Framework: "instant"} }
func (instant) Call(context.Context, string, any, ...mlbridge.CallOption) (mlbridge.Result, error) {
	return mlbridge.RawResult([]byte{0xc0}), nil
}

// BenchmarkRemoteCall is a no-op through a node against an adapter that does nothing;
// BenchmarkRawRequest is NATS request-reply on the same server.
func BenchmarkRemoteCall(b *testing.B) {
	e, err := mlnats.StartEmbedded(mlnats.EmbeddedConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	nnc, _ := nats.Connect(e.URL())
	defer nnc.Close()
	n, err := mlnats.NewNode(nnc, mlnats.NodeConfig{Adapters: map[string]mlbridge.Adapter{"echo": instant{}}, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	cnc, _ := nats.Connect(e.URL())
	defer cnc.Close()
	r, err := mlnats.Dial(context.Background(), cnc, "echo", mlnats.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Call(ctx, "noop", nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawRequest(b *testing.B) {
	e, err := mlnats.StartEmbedded(mlnats.EmbeddedConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	nnc, _ := nats.Connect(e.URL())
	defer nnc.Close()
	_, _ = nnc.Subscribe("echo", func(m *nats.Msg) { _ = m.Respond(m.Data) })
	_ = nnc.Flush()
	cnc, _ := nats.Connect(e.URL())
	defer cnc.Close()
	for b.Loop() {
		if _, err := cnc.Request("echo", []byte{0x80}, 1e9); err != nil {
			b.Fatal(err)
		}
	}
}
