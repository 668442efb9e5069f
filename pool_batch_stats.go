package mlbridge

import "time"

// BatchStats describes one batched op of a pool (PoolStats.Batching): its effective limits
// and the batches sent so far.
type BatchStats struct {
	MaxSize int           `json:"max_size"`
	MaxWait time.Duration `json:"max_wait_ns"`
	Queued  int           `json:"queued"`  // calls waiting for a batch now
	Batches uint64        `json:"batches"` // batches sent
	Calls   uint64        `json:"calls"`   // calls sent in them (Calls/Batches: the mean size)
	Largest int           `json:"largest"` // the largest batch sent
}

// batchStats sums the batchers of each op (one per set of Uses resources), the dropped ones
// included (pool_batch_idle.go).
func (p *Pool) batchStats() map[string]BatchStats {
	p.batchMu.Lock()
	bs := make([]*batcher, 0, len(p.batchers))
	for _, b := range p.batchers {
		bs = append(bs, b)
	}
	out := map[string]BatchStats{}
	for op, t := range p.batchRetired { // taken with the live ones: none is counted twice
		out[op] = BatchStats{MaxSize: t.maxSize, MaxWait: t.maxWait, Batches: t.batches, Calls: t.calls, Largest: t.largest}
	}
	p.batchMu.Unlock()
	if len(out) == 0 && len(bs) == 0 {
		return nil
	}
	for _, b := range bs {
		b.mu.Lock()
		queued := len(b.queue)
		b.mu.Unlock()
		s := out[b.op]
		s.MaxSize, s.MaxWait = b.maxSize, b.maxWait
		s.Queued += queued
		s.Batches += b.batches.Load()
		s.Calls += b.items.Load()
		s.Largest = max(s.Largest, int(b.largest.Load()))
		out[b.op] = s
	}
	return out
}
