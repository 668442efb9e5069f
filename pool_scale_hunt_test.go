package mlbridge_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
)

// Thousands of callers queued behind a busy worker, cancelled at once: each gets a typed
// ErrCancelled, the queue empties (no entry leaks), and the pool serves afterwards.
// MinSize = MaxSize: an autoscaling configuration that cannot scale.
func TestPoolThousandsOfQueuedCallersCancelledAtOnce(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.MinSize, c.MaxSize, c.MaxInFlight, c.QueueSize = 0, 1, 1, 1, 4000
	})
	busy := make(chan error, 1)
	go func() {
		_, err := p.Call(context.Background(), "sleep", map[string]any{"seconds": 1.5})
		busy <- err
	}()
	eventually(t, "the busy call", func() bool { return p.Stats().Workers[0].InFlight == 1 })
	const callers = 2000
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			_, err := p.Call(ctx, "noop", nil)
			errs <- err
		})
	}
	eventually(t, "every caller queued", func() bool { return p.Stats().Waiting == callers })
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, mlbridge.ErrCancelled) {
			t.Fatalf("queued call cancelled: %v, want ErrCancelled", err)
		}
	}
	if st := p.Stats(); st.Waiting != 0 || st.OldestWait != 0 {
		t.Fatalf("queue after cancelling: waiting %d oldest %s", st.Waiting, st.OldestWait)
	}
	if err := <-busy; err != nil {
		t.Fatalf("busy call: %v", err)
	}
	if err := noop(p); err != nil {
		t.Fatalf("call after the cancellations: %v", err)
	}
	if w := p.Stats().Workers[0]; w.InFlight != 0 || w.Served != 2 {
		t.Fatalf("worker after: %+v, want nothing in flight and 2 served", w)
	}
}

// Queued callers whose deadlines pass while an autoscaling pool is at MaxSize: each gets a
// typed ErrTimeout and leaves the queue; in-flight counts never go negative.
func TestPoolQueuedDeadlinesWhileAtMaxSize(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.MinSize, c.MaxSize, c.MaxInFlight, c.ScaleDownIdle = 1, 1, 2, 1, 300*time.Millisecond
	})
	var busy sync.WaitGroup
	for range 2 {
		busy.Go(func() {
			if _, err := p.Call(context.Background(), "sleep", map[string]any{"seconds": 2}); err != nil {
				t.Errorf("busy call: %v", err)
			}
		})
	}
	eventually(t, "growth to MaxSize", func() bool { st := p.Stats(); return st.Ready == 2 && st.Waiting == 0 })
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			if _, err := p.Call(ctx, "noop", nil); !errors.Is(err, mlbridge.ErrTimeout) {
				t.Errorf("queued call past its deadline: %v, want ErrTimeout", err)
			}
		})
	}
	wg.Wait()
	if st := p.Stats(); st.Waiting != 0 {
		t.Fatalf("waiting after the deadlines: %d", st.Waiting)
	}
	busy.Wait()
	eventually(t, "shrink to MinSize", func() bool { st := p.Stats(); return st.Size == 1 && len(st.Workers) == 1 })
	for _, w := range p.Stats().Workers {
		if w.InFlight != 0 {
			t.Fatalf("worker after: %+v", w)
		}
	}
	if err := noop(p); err != nil {
		t.Fatal(err)
	}
}

func noop(p *mlbridge.Pool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := p.Call(ctx, "noop", nil)
	return err
}

// Callers cancelled while a busy worker keeps handing its freed slot to the queue: a waiter
// handed the worker just as its ctx ended gives the slot back without it counting as served
// (WorkerStats.Served counts calls the worker ran; MaxRequests recycles on it). Only the
// one call in flight at the cancellation may count without succeeding.
func TestPoolCancelledWaitersAreNotCountedServed(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.MaxInFlight, c.QueueSize = 1, 1, 4000
	})
	const callers = 2000
	ctx, cancel := context.WithCancel(context.Background())
	var ok sync.WaitGroup
	var mu sync.Mutex
	succeeded := 0
	for range callers {
		ok.Go(func() {
			_, err := p.Call(ctx, "sleep", map[string]any{"seconds": 0.002})
			switch {
			case err == nil:
				mu.Lock()
				succeeded++
				mu.Unlock()
			case !errors.Is(err, mlbridge.ErrCancelled):
				t.Errorf("call: %v, want success or ErrCancelled", err)
			}
		})
	}
	eventually(t, "callers queued", func() bool { return p.Stats().Waiting > callers/2 })
	time.Sleep(100 * time.Millisecond) // the worker serves the queue meanwhile
	cancel()
	ok.Wait()
	st := p.Stats()
	served := st.Workers[0].Served
	if served < uint64(succeeded) || served > uint64(succeeded)+1 || st.Waiting != 0 || st.Workers[0].InFlight != 0 {
		t.Fatalf("served %d, succeeded %d (want equal, or one more); waiting %d, in flight %d",
			served, succeeded, st.Waiting, st.Workers[0].InFlight)
	}
}
