package mlbridge

import (
	"fmt"
	"slices"
	"time"
)

// The queue of a batched op (pool_batch.go): calls join it, leave it when their ctx ends, and
// are taken from it a batch at a time; scheduleLocked decides when a batch goes.

// add queues a call and starts a dispatcher or the wait timer as the queue now needs.
func (b *batcher) add(it *batchItem) error {
	b.p.mu.Lock()
	err := b.p.unavailableLocked()
	b.p.mu.Unlock()
	if err != nil {
		return err
	}
	b.mu.Lock()
	if n := len(b.queue); n >= b.p.cfg.QueueSize {
		b.mu.Unlock()
		b.p.stats.overloaded.Add(1)
		return fmt.Errorf("%w: %d calls waiting for a batch of op %q", ErrOverloaded, n, b.op)
	}
	it.since, it.queued = time.Now(), true
	b.queue = append(b.queue, it)
	b.scheduleLocked()
	b.mu.Unlock()
	// A Close between the check above and the append did not see this call: answer it now.
	b.p.mu.Lock()
	closed := b.p.closed
	b.p.mu.Unlock()
	if closed {
		b.failQueued(ErrClosed)
	}
	return nil
}

// remove takes a call out of the queue; false if a dispatcher took it already.
func (b *batcher) remove(it *batchItem) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !it.queued {
		return false
	}
	it.queued = false
	b.queue = slices.DeleteFunc(b.queue, func(x *batchItem) bool { return x == it })
	return true
}

// scheduleLocked starts one dispatcher per max size of queued calls no dispatcher will take,
// and one more for a remainder whose oldest call waited max wait; otherwise it arms the timer
// for that moment. The caller holds b.mu.
func (b *batcher) scheduleLocked() {
	for {
		covered := b.dispatching * b.maxSize
		if len(b.queue) <= covered {
			return
		}
		wait := b.maxWait - time.Since(b.queue[covered].since)
		if len(b.queue)-covered >= b.maxSize || wait <= 0 {
			b.dispatching++
			go b.dispatch()
			continue
		}
		at := time.Now().Add(wait)
		if !b.timerAt.IsZero() && !b.timerAt.After(at) {
			return // armed for as soon, or sooner: it schedules again when it fires
		}
		b.timerAt = at
		if b.timer == nil {
			b.timer = time.AfterFunc(wait, b.onTimer)
		} else {
			b.timer.Reset(wait)
		}
		return
	}
}

// failQueued answers every queued call with err, as the pool's own waiters are answered when
// it closes: a call waiting for its batch would otherwise learn of it only once its max wait
// passed. Dispatchers already waiting for a worker are failed by the pool's waiters.
func (b *batcher) failQueued(err error) {
	b.mu.Lock()
	items := b.queue
	b.queue = nil
	for _, it := range items {
		it.queued = false
	}
	if b.timer != nil {
		b.timer.Stop()
		b.timerAt = time.Time{}
	}
	b.mu.Unlock()
	deliver(items, nil, err, false)
}

func (b *batcher) onTimer() {
	b.mu.Lock()
	b.timerAt = time.Time{}
	b.scheduleLocked()
	b.mu.Unlock()
}

// takeLocked removes the next batch from the queue: up to max size calls, oldest first, within
// the frame's room; calls whose ctx already ended are dropped (their callers have returned).
// The caller holds b.mu.
func (b *batcher) takeLocked() []*batchItem {
	var items []*batchItem
	size, n := 0, 0
	for ; n < len(b.queue) && len(items) < b.maxSize; n++ {
		it := b.queue[n]
		if it.ctx.Err() != nil {
			it.queued = false
			continue
		}
		if len(items) > 0 && size+len(it.args) > b.maxBytes {
			break
		}
		size += len(it.args)
		it.queued = false
		items = append(items, it)
	}
	b.queue = slices.Delete(b.queue, 0, n)
	return items
}
