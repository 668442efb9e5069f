package mlnats_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
)

// TestRegistryRemoteOutlivesOutage: a remote: bridge of a Registry keeps working after a
// NATS outage longer than nats.go's default reconnect budget (60 attempts): its connection
// was closed for good then, and every later call failed until the program restarted. The
// caller's options here only shorten the wait between attempts (60 × 10 ms ≈ 0.6 s), so an
// outage of 1.5 s outlasts the default budget.
func TestRegistryRemoteOutlivesOutage(t *testing.T) {
	srv := startRestartable(t)
	url := srv.e.URL()
	pool := openPool(t)
	node, err := mlnats.NewNode(reconnecting(t, url, 50*time.Millisecond), mlnats.NodeConfig{Adapters: map[string]mlbridge.Adapter{"echo": pool}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	cfg, err := mlbridge.ParseRegistryConfig([]byte("bridges:\n  echo:\n    remote: {nats: \"" + url + "\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	dialer := mlnats.RegistryDialer(mlnats.Options{Logger: quiet}, nats.ReconnectWait(10*time.Millisecond), nats.ReconnectJitter(0, 0))
	reg, err := mlbridge.NewRegistry(cfg, mlbridge.RegistryOptions{Logger: quiet, Remote: dialer})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := reg.Adapter(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Call(ctx, "noop", nil); err != nil {
		t.Fatal(err)
	}
	srv.stop()
	time.Sleep(1500 * time.Millisecond)
	srv.start()
	waitFor(t, "the remote bridge serves again after the outage", func() bool {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		defer ccancel()
		_, err := a.Call(cctx, "noop", nil)
		return err == nil
	})
}
