package mlbridge_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
)

// TestBatchStaysFullUnderLoad: 64 callers (8 times the max batch size of 8) call a batched op
// over and over on a pool of 2 workers, each batch held 30 ms on the worker so that calls pile
// up while batches run, each caller pausing a random 0-3 ms between its calls so that they do
// not march in step. Dispatch must keep the batches full, not spread the calls thinly over the
// workers: at least 90% of the calls travel in full batches of 8, and both workers serve. With
// MaxInFlight 1 each worker runs one batch at a time and the dispatchers wait for a worker;
// with the default limit every batch gets a worker at once. The size distribution is rebuilt
// from the answers (each item reports the size of the batch it came in and the worker's pid)
// and checked against PoolStats.Batching.
func TestBatchStaysFullUnderLoad(t *testing.T) {
	for _, op := range []string{"double", "adouble"} { // a sync and an async batched handler
		for _, inflight := range []int{0, 1} {
			t.Run(fmt.Sprintf("%s/maxinflight=%d", op, inflight), func(t *testing.T) { batchLoad(t, op, inflight) })
		}
	}
}

func batchLoad(t *testing.T, op string, inflight int) {
	const (
		callers = 64
		rounds  = 8
		maxSize = 8 // BatchEchoBridge's declaration
	)
	p := openBatchPool(t, func(c *mlbridge.PoolConfig) { c.MaxInFlight = inflight }) // 2 workers
	type key struct{ pid, size int }
	var mu sync.Mutex
	items := map[key]int{} // calls answered, by worker and batch size
	var wg sync.WaitGroup
	start := time.Now()
	for i := range callers {
		wg.Go(func() {
			for r := range rounds {
				time.Sleep(time.Duration(rand.Int64N(int64(3 * time.Millisecond))))
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				x := i*rounds + r
				out, err := mlbridge.Decode[doubled](p.Call(ctx, op, map[string]any{"x": x, "sleep": 0.03}))
				cancel()
				if err != nil || out.Y != 2*x {
					t.Errorf("caller %d round %d: %+v, %v", i, r, out, err)
					return
				}
				mu.Lock()
				items[key{out.Pid, out.Batch}]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if t.Failed() {
		return
	}

	sizes := map[int]int{} // batches, by size
	pids := map[int]int{}  // batches, by worker
	var batches, full, calls int
	for k, n := range items {
		if n%k.size != 0 {
			t.Errorf("worker %d answered %d calls from batches of %d: not whole batches", k.pid, n, k.size)
		}
		sizes[k.size] += n / k.size
		pids[k.pid] += n / k.size
		batches += n / k.size
		calls += n
		if k.size == maxSize {
			full += n
		}
	}
	var dist []string
	for _, s := range slices.Sorted(maps.Keys(sizes)) {
		dist = append(dist, fmt.Sprintf("%d×%d", sizes[s], s))
	}
	st := p.Stats().Batching[op]
	t.Logf("%s: %d calls from %d callers in %s: %d batches (sizes: %s), %.0f%% of calls in full batches; batches per worker %v; PoolStats.Batching %+v",
		op, calls, callers, elapsed.Round(time.Millisecond), batches, strings.Join(dist, ", "), 100*float64(full)/float64(calls), pids, st)
	if calls != callers*rounds {
		t.Fatalf("%d calls answered, want %d", calls, callers*rounds)
	}
	if st.Calls != uint64(calls) || st.Batches != uint64(batches) || st.Largest > maxSize {
		t.Errorf("PoolStats.Batching %+v disagrees with the answers: %d batches of %d calls", st, batches, calls)
	}
	if len(pids) < 2 {
		t.Errorf("one worker served every batch: %v", pids)
	}
	if float64(full) < 0.9*float64(calls) {
		t.Errorf("only %d of %d calls went in full batches of %d (sizes %s): dispatch spread the load thinly", full, calls, maxSize, strings.Join(dist, ", "))
	}
}
