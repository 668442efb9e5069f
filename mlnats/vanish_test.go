package mlnats_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
)

// TestStreamClientVanishes: a client whose connection drops mid-stream (a crash: no cancel
// is sent) leaves the node waiting for credit that will never come. The node finds nobody
// on the stream's reply subject and stops the Python generator (it waited forever before).
func TestStreamClientVanishes(t *testing.T) {
	e := embedded(t)
	startNode(t, e)
	nc, err := nats.Connect(e.URL(), nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	r, err := mlnats.Dial(ctx, nc, "echo", mlnats.Options{Window: 2, Heartbeat: 50 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := 0
	// A slow generator (200 s in all), so that it is still running when the client goes.
	for _, err := range r.Stream(ctx, "count", map[string]any{"n": 100000, "delay": 0.002, "token": "vanish"}) {
		if err != nil {
			t.Fatal(err)
		}
		if got++; got == 1 {
			nc.Close() // the client crashes: nothing more is read, no cancel is sent
			break
		}
	}
	probe := dial(t, e, mlnats.Options{})
	start := time.Now()
	waitFor(t, "the generator cancelled", func() bool {
		toks, err := mlbridge.Decode[[]string](probe.Call(ctx, "cancelled_tokens", nil))
		return err == nil && slices.Contains(toks, "vanish")
	})
	t.Logf("generator cancelled %v after the client vanished", time.Since(start))
}
