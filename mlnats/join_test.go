package mlnats_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge/mlnats"
)

// joinBound is the promise: a new node is used within 1 s of joining.
const joinBound = time.Second

// TestNodeJoinUsedWithin1s: with a client calling continuously over two nodes, a third node
// takes its first call within 1 s of NewNode returning (its pool is open by then, so the
// time is NATS's, not Python's start-up). The bound is measured from NewNode's return, not
// from the start of the pool, and each measurement is logged.
func TestNodeJoinUsedWithin1s(t *testing.T) {
	e := embedded(t)
	startNode(t, e)
	startNode(t, e)
	r := dial(t, e, mlnats.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	// Two callers keep calls going, as traffic would; NATS picks a queue member per request.
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := r.Call(ctx, "noop", nil); err != nil && ctx.Err() == nil {
					t.Error(err)
					return
				}
			}
		})
	}
	joined := startNodeWith(t, e, func(*mlnats.NodeConfig) {})
	ready := time.Now() // NewNode has returned: the node says it serves
	for joined.c.n.Load() == 0 {
		if time.Since(ready) > 10*time.Second {
			t.Fatal("the node that joined took no call in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(ready)
	t.Logf("the joined node took its first call %v after NewNode returned", took)
	if took > joinBound {
		t.Fatalf("the joined node took its first call %v after joining; the bound is %v", took, joinBound)
	}
}
