package mlnats_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
)

// TestDeadlineAndCancelRaces: calls whose deadline is shorter than a NATS round trip, or
// that are cancelled around the time their reply comes: each returns at once with its
// result or with the error a local call gives (ErrTimeout + DeadlineExceeded, ErrCancelled
// + Canceled), and the node serves on.
func TestDeadlineAndCancelRaces(t *testing.T) {
	e := embedded(t)
	startNode(t, e)
	r := dial(t, e, mlnats.Options{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[string]int{}
	note := func(k string) { mu.Lock(); counts[k]++; mu.Unlock() }
	sem := make(chan struct{}, 8) // a few at a time: round trips stay near their quiet time
	for i := range 400 {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			d := time.Duration(rand.IntN(4000)) * time.Microsecond
			var ctx context.Context
			var cancel context.CancelFunc
			deadline := i%2 == 0
			if deadline {
				ctx, cancel = context.WithTimeout(context.Background(), d)
			} else {
				ctx, cancel = context.WithCancel(context.Background())
				time.AfterFunc(d, cancel)
			}
			defer cancel()
			start := time.Now()
			_, err := r.Call(ctx, "echo", map[string]any{"value": i})
			took := time.Since(start)
			switch {
			case err == nil:
				note("ok")
			case deadline && errors.Is(err, mlbridge.ErrTimeout) && errors.Is(err, context.DeadlineExceeded):
				note("timeout")
			case !deadline && errors.Is(err, mlbridge.ErrCancelled) && errors.Is(err, context.Canceled):
				note("cancelled")
			default:
				t.Errorf("call %d (deadline %v, by deadline %v): %v", i, d, deadline, err)
			}
			if took > d+time.Second {
				t.Errorf("call %d returned %v after its %v", i, took, d)
			}
		})
	}
	wg.Wait()
	t.Logf("outcomes: %v", counts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.Call(ctx, "noop", nil); err != nil {
		t.Fatal(err)
	}
}
