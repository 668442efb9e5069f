package mlbridge

import "time"

// Idle batchers are dropped. There is one batcher per batched op and per set of Uses
// resources, and clients call with Uses(modelID): without this, every model ever called (a
// deleted one included) would keep a batcher, its timer and its map entry for the pool's life.
// The sweep runs when a new batcher is made (the only moment the map grows), at most once per
// idle period, so the map holds the batchers in use plus those made in the last two periods.
// A batcher that is busy in any way (a caller holds it, calls queued, a dispatcher or a batch
// on its way) is kept; its counts move to the pool's retired sums so PoolStats never go back.

// batcherIdleAfter is how long a batcher stays unused before a sweep may drop it.
const batcherIdleAfter = time.Minute

// batchTotals are the counts of an op's dropped batchers.
type batchTotals struct {
	maxSize        int
	maxWait        time.Duration
	batches, calls uint64
	largest        int
}

// sweepBatchersLocked drops the batchers idle for the idle period. The caller holds batchMu.
func (p *Pool) sweepBatchersLocked(now time.Time) {
	idle := p.batchIdle
	if idle <= 0 {
		idle = batcherIdleAfter
	}
	if now.Sub(p.batchSwept) < idle {
		return
	}
	p.batchSwept = now
	for key, b := range p.batchers {
		// users is only ever raised under batchMu, which we hold: zero stays zero
		if b.users.Load() > 0 || now.Sub(time.Unix(0, b.lastUsed.Load())) < idle {
			continue
		}
		b.mu.Lock()
		busy := len(b.queue) > 0 || b.dispatching > 0 || b.running > 0
		if !busy && b.timer != nil {
			b.timer.Stop()
		}
		b.mu.Unlock()
		if busy {
			continue
		}
		delete(p.batchers, key)
		if p.batchRetired == nil {
			p.batchRetired = map[string]batchTotals{}
		}
		t := p.batchRetired[b.op]
		t.maxSize, t.maxWait = b.maxSize, b.maxWait
		t.batches += b.batches.Load()
		t.calls += b.items.Load()
		t.largest = max(t.largest, int(b.largest.Load()))
		p.batchRetired[b.op] = t
	}
}
