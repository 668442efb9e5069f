package mlnats_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mlbridge/mlbridge/mlnats"
)

// TestBlobBucketDeleted: the values' bucket is deleted between calls (an operator's
// cleanup, `nats object rm`). Both sides had it open; the next large argument, result and
// stream chunk must go through a bucket created again: they failed with ErrPayloadTooLarge
// ("no responders") until the Remote and the Node were made anew.
func TestBlobBucketDeleted(t *testing.T) {
	e := embedded(t)
	blobs := mlnats.BlobConfig{Bucket: "gone-test", Threshold: 1 << 10}
	startNodeWith(t, e, func(c *mlnats.NodeConfig) { c.Blobs = blobs })
	r := dial(t, e, mlnats.Options{Blobs: blobs})
	js, err := jetstream.New(connect(t, e))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	big := make([]byte, 4<<10)
	call := func() error {
		_, err := r.Call(ctx, "echo", map[string]any{"value": big})
		return err
	}
	stream := func() error {
		for _, err := range r.Stream(ctx, "big_chunks", map[string]any{"n": 2, "size": 4 << 10}) {
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := call(); err != nil {
		t.Fatal(err)
	}
	if err := stream(); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		if err := js.DeleteObjectStore(ctx, "gone-test"); err != nil {
			t.Fatal(err)
		}
		if err := call(); err != nil {
			t.Fatalf("round %d: a large call after the bucket was deleted: %v", round, err)
		}
		if err := js.DeleteObjectStore(ctx, "gone-test"); err != nil {
			t.Fatal(err)
		}
		if err := stream(); err != nil {
			t.Fatalf("round %d: a stream of large chunks after the bucket was deleted: %v", round, err)
		}
	}
}
