package mlbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge/internal/wire"
	"github.com/mlbridge/mlbridge/internal/worker"
)

// Dynamic batching. A bridge declares an op batched (Python: @batched(max_size, max_wait_ms);
// the worker's hello carries it). The pool then gathers concurrent calls to that op from all
// its callers in one queue per op (and per set of Uses resources) and sends them to a worker
// as one breq, answered by one bres: each caller gets its own result or error.
//
// When a batch goes: as soon as the queue holds max size calls, or its oldest call waited max
// wait. What goes: a dispatcher first reserves a worker (the pool's ordinary acquire, so a
// batch counts as one call in flight), and only then takes up to max size calls from the
// queue. Under load the workers are busy, the queue fills while a dispatcher waits, and every
// batch leaves full: calls are never spread thinly over workers. A caller whose ctx ends while
// its call is queued leaves the queue and no one else notices; once its batch is sent it
// returns its ctx error, its item's answer is dropped, and the batch is cancelled only when
// every caller in it gave up.

// BatchPolicy overrides, for one op, what the bridge declared (PoolConfig.Batching).
type BatchPolicy struct {
	// MaxSize bounds a batch (0: the bridge's; never above the bridge's, which the worker
	// enforces).
	MaxSize int `json:"max_size,omitempty" yaml:"max_size,omitempty"`
	// MaxWait is how long the oldest call of a batch that is not full waits before the batch
	// goes anyway (0: the bridge's).
	MaxWait time.Duration `json:"max_wait,omitempty" yaml:"max_wait,omitempty"`
	// Off serves the op call by call (the worker runs each as a batch of one).
	Off bool `json:"off,omitempty" yaml:"off,omitempty"`
}

// batchItem is one caller's call waiting in, or sent with, a batch.
type batchItem struct {
	ctx    context.Context
	args   msgpack.RawMessage // encoded by its caller (wire.Encoder.Args)
	since  time.Time
	queued bool // in its batcher's queue (guarded by batcher.mu)
	done   chan itemOutcome
}

type itemOutcome struct {
	raw  msgpack.RawMessage
	err  error
	sent bool // the batch reached a worker (for the idempotent retry)
}

// batcher gathers the calls of one batched op (and one set of Uses resources).
type batcher struct {
	p        *Pool
	op       string
	uses     []string
	maxSize  int
	maxWait  time.Duration
	maxBytes int // items' bytes a breq may carry (the max frame less the envelope)

	mu          sync.Mutex
	queue       []*batchItem
	dispatching int       // dispatchers reserving a worker, not yet served from the queue
	timerAt     time.Time // when the armed timer fires (zero: not armed)
	timer       *time.Timer

	batches, items atomic.Uint64 // sent, for PoolStats
	largest        atomic.Int64
}

// batchDecl records the batched ops a worker declared (every worker of a pool runs the same
// bridge: the newest hello stands for all).
func (p *Pool) noteBatched(decl map[string]wire.BatchSpec) {
	if len(decl) == 0 {
		p.batchDecl.Store(nil)
		return
	}
	p.batchDecl.Store(&decl)
}

// batcherFor returns the batcher of op (and uses), or nil if op is not batched.
func (p *Pool) batcherFor(op string, o callOptions) *batcher {
	decl := p.batchDecl.Load()
	if decl == nil {
		return nil
	}
	spec, ok := (*decl)[op]
	if !ok || spec.MaxSize < 1 {
		return nil
	}
	pol := p.cfg.Batching[op]
	if pol.Off {
		return nil
	}
	key := op
	if len(o.uses) > 0 {
		key += "\x00" + strings.Join(o.uses, "\x00")
	}
	p.batchMu.Lock()
	defer p.batchMu.Unlock()
	if b := p.batchers[key]; b != nil {
		return b
	}
	size, wait := spec.MaxSize, time.Duration(spec.MaxWaitMs)*time.Millisecond
	if pol.MaxSize > 0 {
		size = min(size, pol.MaxSize)
	}
	if pol.MaxWait > 0 {
		wait = pol.MaxWait
	}
	b := &batcher{
		p: p, op: op, uses: slices.Clone(o.uses), maxSize: size, maxWait: wait,
		maxBytes: p.maxFrame() - wire.BatchOverhead(op),
	}
	if p.batchers == nil {
		p.batchers = map[string]*batcher{}
	}
	p.batchers[key] = b
	return b
}

func (p *Pool) maxFrame() int {
	if p.wcfg.MaxFrame > 0 {
		return p.wcfg.MaxFrame
	}
	return wire.DefaultMaxFrame
}

// batchedCall is attempts for a batched op: the call joins a batch instead of taking a worker.
func (p *Pool) batchedCall(ctx context.Context, mode int, b *batcher, args any, o callOptions) (Result, error) {
	start := time.Now()
	enc := wire.GetEncoder()
	enc.SetMaxFrame(b.maxBytes)
	raw, err := enc.Args(args)
	wire.PutEncoder(enc)
	if err != nil {
		err = fmt.Errorf("%w: op %q: %w", ErrInvalidArgument, b.op, err)
		p.record(ctx, mode, b.op, start, err)
		return Result{}, err
	}
	for attempt := 0; ; attempt++ {
		it := &batchItem{ctx: ctx, args: raw, done: make(chan itemOutcome, 1)}
		if err := b.add(it); err != nil {
			p.record(ctx, mode, b.op, start, err)
			return Result{}, err
		}
		var out itemOutcome
		select {
		case out = <-it.done:
		case <-ctx.Done():
			what := fmt.Sprintf("op %q", b.op) // sent: its answer will be dropped
			if b.remove(it) {
				what = fmt.Sprintf("op %q waiting for its batch", b.op)
			}
			out.err = worker.CtxError(what, ctx.Err())
		}
		if out.sent && attempt == 0 && o.idempotent && ctx.Err() == nil && errors.Is(out.err, ErrWorkerExited) {
			p.stats.retries.Add(1)
			p.logCall(ctx, slog.LevelInfo, "mlbridge: worker died during an idempotent batched call; retrying",
				slog.String("op", b.op))
			continue
		}
		p.record(ctx, mode, b.op, start, out.err)
		return Result{raw: out.raw}, out.err
	}
}

// add queues a call and starts a dispatcher or the wait timer as the queue now needs.
func (b *batcher) add(it *batchItem) error {
	b.p.mu.Lock()
	err := b.p.unavailableLocked()
	b.p.mu.Unlock()
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) >= b.p.cfg.QueueSize {
		b.p.stats.overloaded.Add(1)
		return fmt.Errorf("%w: %d calls waiting for a batch of op %q", ErrOverloaded, len(b.queue), b.op)
	}
	it.since, it.queued = time.Now(), true
	b.queue = append(b.queue, it)
	b.scheduleLocked()
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

// dispatch reserves a worker, takes a batch and runs it.
func (b *batcher) dispatch() {
	p := b.p
	pw, err := p.acquire(context.Background(), nil)
	b.mu.Lock()
	b.dispatching--
	items := b.takeLocked()
	b.scheduleLocked()
	b.mu.Unlock()
	switch {
	case err != nil:
		deliver(items, nil, err, false)
	case len(items) == 0:
		p.unreserve(pw)
	default:
		b.run(pw, items)
	}
}

// run sends items as one batch on pw and hands each caller its answer. A batch that never
// reached pw (it died first) is placed on another worker, as a call would be.
func (b *batcher) run(pw *poolWorker, items []*batchItem) {
	p := b.p
	for attempt := 0; ; attempt++ {
		items = slices.DeleteFunc(items, func(it *batchItem) bool { return it.ctx.Err() != nil })
		if len(items) == 0 {
			p.unreserve(pw)
			return
		}
		ctx, stop := batchContext(items)
		outs, sent, err := b.send(ctx, pw, items)
		stop()
		p.release(pw, err)
		if err != nil && !sent && errors.Is(err, ErrWorkerExited) && attempt < p.cfg.MaxSize+1 {
			next, aerr := p.acquire(context.Background(), pw)
			if aerr != nil {
				deliver(items, nil, aerr, false)
				return
			}
			pw = next
			continue
		}
		if err != nil && errors.Is(err, ErrWorkerExited) {
			p.log.Warn("mlbridge: batch lost with its worker", "op", b.op, "calls", len(items), "pid", pw.w.Pid(), "err", err)
		}
		deliver(items, outs, err, sent)
		return
	}
}

// send is one attempt: the resources the calls use, the breq, its answers.
func (b *batcher) send(ctx context.Context, pw *poolWorker, items []*batchItem) (outs []itemOutcome, sent bool, err error) {
	if len(b.uses) > 0 {
		if err := b.p.ensure(ctx, pw, b.uses); err != nil {
			return nil, false, err
		}
	}
	raws := make([]msgpack.RawMessage, len(items))
	for i, it := range items {
		raws[i] = it.args
	}
	c, err := pw.w.SendBatch(ctx, b.op, raws)
	if err != nil {
		return nil, false, err
	}
	b.batches.Add(1)
	b.items.Add(uint64(len(items)))
	for n := int64(len(items)); ; {
		if old := b.largest.Load(); n <= old || b.largest.CompareAndSwap(old, n) {
			break
		}
	}
	res, err := c.BatchResults(context.Background()) // ends with the batch: answered, cancelled or its worker dead
	if err != nil {
		return nil, true, err
	}
	if len(res) != len(items) { // the session checks the count; this keeps a bug from indexing past it
		return nil, true, fmt.Errorf("%w: op %q: %d answers for a batch of %d", ErrProtocol, b.op, len(res), len(items))
	}
	outs = make([]itemOutcome, len(res))
	for i, r := range res {
		outs[i] = itemOutcome{raw: r.Result, err: r.Err, sent: true}
	}
	return outs, true, nil
}

// deliver answers each caller: its own outcome, or err for all.
func deliver(items []*batchItem, outs []itemOutcome, err error, sent bool) {
	for i, it := range items {
		if err != nil {
			it.done <- itemOutcome{err: err, sent: sent}
		} else {
			it.done <- outs[i]
		}
	}
}

// batchContext governs a sent batch: it ends when every caller in it gave up (their ctx
// ended), and carries the latest of their deadlines when all have one, so that Python stops
// the batch when no one waits for it any more.
func batchContext(items []*batchItem) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var latest time.Time
	for _, it := range items {
		d, ok := it.ctx.Deadline()
		if !ok {
			latest = time.Time{}
			break
		}
		if d.After(latest) {
			latest = d
		}
	}
	if !latest.IsZero() {
		var c2 context.CancelFunc
		ctx, c2 = context.WithDeadline(ctx, latest)
		prev := cancel
		cancel = func() { c2(); prev() }
	}
	var left atomic.Int64
	left.Store(int64(len(items)))
	stops := make([]func() bool, len(items))
	for i, it := range items {
		stops[i] = context.AfterFunc(it.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, s := range stops {
			s()
		}
		cancel()
	}
}

// unreserve gives back a worker reserved for a batch that found no call left to send: not a
// call served.
func (p *Pool) unreserve(pw *poolWorker) {
	p.mu.Lock()
	pw.inflight--
	if pw.state == stateDraining {
		if pw.inflight == 0 && pw.idle != nil {
			close(pw.idle)
			pw.idle = nil
		}
	} else {
		p.handOffLocked()
	}
	p.mu.Unlock()
}

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

// batchStats sums the batchers of each op (one per set of Uses resources).
func (p *Pool) batchStats() map[string]BatchStats {
	p.batchMu.Lock()
	bs := make([]*batcher, 0, len(p.batchers))
	for _, b := range p.batchers {
		bs = append(bs, b)
	}
	p.batchMu.Unlock()
	if len(bs) == 0 {
		return nil
	}
	out := map[string]BatchStats{}
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
