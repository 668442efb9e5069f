package mlnats_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
)

// TestBlobServerDown: a large value sent while the NATS server is down (both connections
// reconnecting) fails as the server being unavailable, not as a bad argument: it failed
// with ErrPayloadTooLarge + ErrInvalidArgument ("no JetStream object store").
func TestBlobServerDown(t *testing.T) {
	srv := startRestartable(t)
	url := srv.e.URL()
	pool := openPool(t)
	blobs := mlnats.BlobConfig{Bucket: "outage-test", Threshold: 1 << 10}
	node, err := mlnats.NewNode(reconnecting(t, url, 50*time.Millisecond), mlnats.NodeConfig{Adapters: map[string]mlbridge.Adapter{"echo": pool}, Logger: quiet, Blobs: blobs})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := mlnats.Dial(ctx, reconnecting(t, url, 50*time.Millisecond), "echo", mlnats.Options{Logger: quiet, Blobs: blobs})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Call(ctx, "echo", map[string]any{"value": make([]byte, 8<<10)}); err != nil {
		t.Fatal(err)
	}
	srv.stop()
	start := time.Now()
	_, err = r.Call(ctx, "echo", map[string]any{"value": make([]byte, 16<<20)}) // over the reconnect buffer
	t.Logf("a large call with the server down: %v after %v", err, time.Since(start))
	if !errors.Is(err, mlbridge.ErrUnavailable) || errors.Is(err, mlbridge.ErrInvalidArgument) || errors.Is(err, mlnats.ErrPayloadTooLarge) {
		t.Fatalf("a large call with the server down: %v, want ErrUnavailable (and not ErrInvalidArgument)", err)
	}
	srv.start()
	waitFor(t, "large values served again", func() bool {
		_, err := r.Call(ctx, "echo", map[string]any{"value": make([]byte, 8<<10)})
		return err == nil
	})
}
