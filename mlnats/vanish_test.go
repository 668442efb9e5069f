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

// TestClientVanishes: a client whose connection drops (a crash: no cancel is sent) during
// a stream, a call and a submitted call, none with a deadline. The node finds nobody on
// their reply subjects and cancels them, Python tasks included: the stream waited for
// credit forever before, and the calls ran to their end.
func TestClientVanishes(t *testing.T) {
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
	go func() { _, _ = r.Call(ctx, "sleep", map[string]any{"seconds": 600, "token": "vanish-call"}) }()
	go func() {
		_, _ = r.Submit(ctx, "sleep", map[string]any{"seconds": 600, "token": "vanish-submit"}).Wait(ctx)
	}()
	got := 0
	// A slow generator (200 s in all), so that it is still running when the client goes.
	for _, err := range r.Stream(ctx, "count", map[string]any{"n": 100000, "delay": 0.002, "token": "vanish-stream"}) {
		if err != nil {
			t.Fatal(err)
		}
		if got++; got == 1 {
			time.Sleep(200 * time.Millisecond) // the calls are running
			nc.Close()                         // the client crashes: nothing more is read, no cancel is sent
			break
		}
	}
	probe := dial(t, e, mlnats.Options{})
	start := time.Now()
	for _, token := range []string{"vanish-stream", "vanish-call", "vanish-submit"} {
		waitFor(t, token+" cancelled", func() bool {
			toks, err := mlbridge.Decode[[]string](probe.Call(ctx, "cancelled_tokens", nil))
			return err == nil && slices.Contains(toks, token)
		})
		t.Logf("%s cancelled %v after the client vanished", token, time.Since(start))
	}
}
