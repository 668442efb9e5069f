package mlnats_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
)

// TestStreamStalledConsumer pins what a consumer that stops reading costs: the credit
// window bounds what crosses NATS, not what the node's pool takes from Python. The pool
// queues the generator's chunks up to its MaxStreamBuffer (here 8 MiB of 25 MiB), then
// ends the stream with ErrStreamOverflow, which reaches the consumer when it reads again,
// after the chunks queued before it: as a local pool's stream does.
func TestStreamStalledConsumer(t *testing.T) {
	e := embedded(t)
	startNode(t, e, func(c *mlbridge.PoolConfig) { c.MaxStreamBuffer = 8 << 20 })
	r := dial(t, e, mlnats.Options{Window: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := 0
	var last error
	for _, err := range r.Stream(ctx, "big_chunks", map[string]any{"n": 100, "size": 256 << 10}) {
		if err != nil {
			last = err
			break
		}
		if got++; got == 1 {
			time.Sleep(2 * time.Second) // the consumer stalls while Python produces all 100
		}
	}
	t.Logf("%d chunks, then %v", got, last)
	if !errors.Is(last, mlbridge.ErrStreamOverflow) {
		t.Fatalf("a stalled consumer: %v after %d chunks, want ErrStreamOverflow", last, got)
	}
	if got >= 100 {
		t.Fatalf("all %d chunks arrived: nothing was bounded", got)
	}
}
