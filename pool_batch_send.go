package mlbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"go.opentelemetry.io/otel/trace"

	"github.com/mlbridge/mlbridge/internal/worker"
)

// Sending a batch (pool_batch.go): a dispatcher reserves a worker, takes a batch from the
// queue, sends it as one breq and hands each caller its answer.

// dispatch reserves a worker, takes a batch and runs it.
func (b *batcher) dispatch() {
	p := b.p
	pw, err := p.acquire(context.Background(), nil)
	b.mu.Lock()
	b.dispatching--
	items := b.takeLocked()
	b.scheduleLocked()
	if err == nil && len(items) > 0 {
		b.running++
	}
	b.mu.Unlock()
	switch {
	case err != nil:
		deliver(items, nil, err, false)
	case len(items) == 0:
		p.unreserve(pw)
	default:
		b.run(pw, items)
		b.mu.Lock()
		b.running--
		b.mu.Unlock()
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
		callers := callerSpans(items)
		outs, sent, err := b.send(ctx, pw, items, callers)
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
			// joined to the callers' traces, as a lost call's record is to its caller's
			attrs := append(worker.LostCallAttrs(spanContexts(callers)),
				slog.String("op", b.op), slog.Int("calls", len(items)), slog.Int("pid", pw.w.Pid()), slog.Any("err", err))
			p.log.LogAttrs(context.Background(), slog.LevelWarn, "mlbridge: batch lost with its worker", attrs...)
		}
		deliver(items, outs, err, sent)
		return
	}
}

// send is one attempt: the resources the calls use, the breq, its answers. callers are the
// spans of the traced callers among items (callerSpans).
func (b *batcher) send(ctx context.Context, pw *poolWorker, items []*batchItem, callers []trace.Span) (outs []itemOutcome, sent bool, err error) {
	if len(b.uses) > 0 {
		if err := b.p.ensure(ctx, pw, b.uses); err != nil {
			return nil, false, err
		}
	}
	raws := make([]msgpack.RawMessage, len(items))
	for i, it := range items {
		raws[i] = it.args
	}
	c, err := pw.w.SendBatch(ctx, b.op, raws, callers)
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

// callerSpans are the spans of the traced callers among items: the batch span links them
// when the pool traces, and records about the batch's loss name their traces either way
// (whatever provider started them), as they do for a lost call.
func callerSpans(items []*batchItem) []trace.Span {
	var spans []trace.Span
	for _, it := range items {
		if sp := trace.SpanFromContext(it.ctx); sp.SpanContext().IsValid() {
			spans = append(spans, sp)
		}
	}
	return spans
}

func spanContexts(spans []trace.Span) []trace.SpanContext {
	scs := make([]trace.SpanContext, len(spans))
	for i, sp := range spans {
		scs[i] = sp.SpanContext()
	}
	return scs
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
	p.returnLocked(pw)
	p.mu.Unlock()
}
