package mlbridge_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/store"
)

// defineGreetings defines n resources g0..g(n-1) the batch echo bridge can build.
func defineGreetings(t *testing.T, p *mlbridge.Pool, n int) {
	t.Helper()
	for i := range n {
		if _, err := p.Define(context.Background(), store.Definition{ID: fmt.Sprintf("g%d", i), Kind: "greeting"}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBatchIdleBatchersAreDropped: calls with Uses(id) for 20 ids, one after the other, leave
// only the recent batchers (one per op and Uses set otherwise), and the dropped batchers'
// counts stay in PoolStats.
func TestBatchIdleBatchersAreDropped(t *testing.T) {
	p := openBatchPool(t, func(c *mlbridge.PoolConfig) { c.Size = 1 }, withPolicy(mlbridge.BatchPolicy{MaxWait: time.Millisecond}))
	const ids = 20
	defineGreetings(t, p, ids)
	mlbridge.SetBatcherIdle(p, 5*time.Millisecond)
	for i := range ids {
		v, err := mlbridge.Decode[doubled](p.Call(context.Background(), "double", map[string]any{"x": i}, mlbridge.Uses(fmt.Sprintf("g%d", i))))
		if err != nil || v.Y != 2*i {
			t.Fatalf("call %d: %+v, %v", i, v, err)
		}
		time.Sleep(12 * time.Millisecond) // past the idle period: the next new batcher sweeps
	}
	if n := mlbridge.Batchers(p); n > 2 {
		t.Fatalf("%d batchers left after %d Uses sets called one after the other", n, ids)
	}
	st := p.Stats().Batching["double"]
	if st.Calls != ids || st.Batches != ids || st.Largest != 1 || st.MaxSize != 8 {
		t.Fatalf("batching stats with dropped batchers: %+v", st)
	}
}

// TestBatchSweepRacesWithCalls: with an idle period of a nanosecond, every new batcher sweeps
// the others while callers of 4 Uses sets come and go: every call is answered once, by a
// batch (run with -race).
func TestBatchSweepRacesWithCalls(t *testing.T) {
	p := openBatchPool(t, withPolicy(mlbridge.BatchPolicy{MaxWait: time.Millisecond}))
	defineGreetings(t, p, 4)
	mlbridge.SetBatcherIdle(p, time.Nanosecond)
	const callers, each = 16, 10
	var wg sync.WaitGroup
	errs := make(chan error, callers*each)
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range each {
				x := c*each + k
				v, err := mlbridge.Decode[doubled](p.Call(context.Background(), "double", map[string]any{"x": x}, mlbridge.Uses(fmt.Sprintf("g%d", x%4))))
				if err == nil && v.Y != 2*x {
					err = fmt.Errorf("x=%d answered %+v", x, v)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if st := p.Stats().Batching["double"]; st.Calls != callers*each {
		t.Fatalf("batching stats: %+v (want %d calls)", st, callers*each)
	}
}
