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

// BatchPolicy overrides, for one op, what the bridge declared (PoolConfig.Batching; in
// mlbridge.yaml, a bridge's batching: entry).
type BatchPolicy struct {
	// MaxSize bounds a batch (0: the bridge's; never above the bridge's, which the worker
	// enforces).
	MaxSize int
	// MaxWait is how long the oldest call of a batch that is not full waits before the batch
	// goes anyway (0: the bridge's).
	MaxWait time.Duration
	// Off serves the op call by call (the worker runs each as a batch of one).
	Off bool
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
	// largeMin: a call with an array this large is not batched (pool_batch_large.go)
	largeMin int

	mu          sync.Mutex
	queue       []*batchItem
	dispatching int       // dispatchers reserving a worker, not yet served from the queue
	running     int       // batches taken from the queue and not yet answered
	timerAt     time.Time // when the armed timer fires (zero: not armed)
	timer       *time.Timer

	// callers holding this batcher (from batcherFor to the end of batchedCall): taken under
	// Pool.batchMu, so a sweep that sees none under it knows no one can add a call
	users    atomic.Int64
	lastUsed atomic.Int64 // unix nanoseconds a caller last let go of it

	batches, items atomic.Uint64 // sent, for PoolStats
	largest        atomic.Int64
}

// noteBatched records the batched ops a worker declared (every worker of a pool runs the same
// bridge: the newest hello stands for all).
func (p *Pool) noteBatched(decl map[string]wire.BatchSpec) {
	if len(decl) == 0 {
		p.batchDecl.Store(nil)
		return
	}
	p.batchDecl.Store(&decl)
}

// batcherFor returns the batcher of op (and uses), or nil if op is not batched. The caller
// holds it until it calls release.
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
		b.users.Add(1)
		return b
	}
	p.sweepBatchersLocked(time.Now())
	size, wait := spec.MaxSize, time.Duration(spec.MaxWaitMs)*time.Millisecond
	if pol.MaxSize > 0 {
		size = min(size, pol.MaxSize)
	}
	if pol.MaxWait > 0 {
		wait = pol.MaxWait
	}
	b := &batcher{
		p: p, op: op, uses: slices.Clone(o.uses), maxSize: size, maxWait: wait,
		maxBytes: p.maxFrame() - wire.BatchOverhead(op), largeMin: p.largeArrayMin(),
	}
	if p.batchers == nil {
		p.batchers = map[string]*batcher{}
	}
	p.batchers[key] = b
	b.users.Add(1)
	return b
}

// release lets go of a batcher batcherFor returned.
func (b *batcher) release() {
	b.lastUsed.Store(time.Now().UnixNano())
	b.users.Add(-1)
}

func (p *Pool) maxFrame() int {
	if p.wcfg.MaxFrame > 0 {
		return p.wcfg.MaxFrame
	}
	return wire.DefaultMaxFrame
}

// batchedCall is attempts for a batched op: the call joins a batch instead of taking a worker.
// It returns errLargeArgs, having recorded nothing, for a call that must not be batched
// (pool_batch_large.go): the caller then makes it an ordinary call.
func (p *Pool) batchedCall(ctx context.Context, mode int, b *batcher, args any, o callOptions) (Result, error) {
	defer b.release()
	start := time.Now()
	enc := wire.GetEncoder()
	enc.SetMaxFrame(b.maxBytes)
	enc.SetSink(largeArgsDetector{min: b.largeMin})
	raw, err := enc.Args(args)
	wire.PutEncoder(enc)
	if errors.Is(err, errLargeArgs) {
		return Result{}, errLargeArgs
	}
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
