package mlnats_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mlbridge/mlbridge/mlnats"
)

// kickValuesConnections has the server drop every values connection (named "... (blobs)"),
// as it drops a slow consumer, and returns how many it dropped.
func kickValuesConnections(t *testing.T, e *mlnats.Embedded) int {
	t.Helper()
	cz, err := e.Server().Connz(&server.ConnzOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cz.Conns {
		if strings.HasSuffix(c.Name, "(blobs)") {
			if err := e.Server().DisconnectClientByID(c.Cid); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	return n
}

// TestBlobConnectionDropped: the server drops the values connections alone (a slow
// consumer kicked during a large transfer) while the main connections stay, with no
// reconnects allowed (nats.MaxReconnects(0), as the main connections have here). The next
// large values must open a new one: they failed with ErrPayloadTooLarge for good.
func TestBlobConnectionDropped(t *testing.T) {
	e := embedded(t)
	blobs := mlnats.BlobConfig{Bucket: "kick-test", Threshold: 1 << 10}
	startNodeWith(t, e, func(c *mlnats.NodeConfig) { c.Blobs = blobs })
	r := dial(t, e, mlnats.Options{Blobs: blobs})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	large := func() error {
		_, err := r.Call(ctx, "echo", map[string]any{"value": make([]byte, 8<<10)})
		return err
	}
	if err := large(); err != nil {
		t.Fatal(err)
	}
	if n := kickValuesConnections(t, e); n != 2 {
		t.Fatalf("%d values connections dropped, want the client's and the node's", n)
	}
	time.Sleep(100 * time.Millisecond) // the clients see their connections closed
	for i := range 3 {
		if err := large(); err != nil {
			t.Fatalf("large call %d after the values connections were dropped: %v", i, err)
		}
	}
}
