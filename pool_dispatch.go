package mlbridge

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mlbridge/mlbridge/internal/worker"
)

type workerState int

const (
	stateReady workerState = iota
	stateDraining
)

func (s workerState) String() string {
	if s == stateReady {
		return "ready"
	}
	return "draining"
}

// poolWorker is one worker as the pool sees it. inflight and state are guarded by Pool.mu.
type poolWorker struct {
	w        *worker.Worker
	slot     *slot
	state    workerState
	inflight int
	assigned int       // calls ever handed to it: a worker that got none and died never started
	readyAt  time.Time // when it entered service
	// idleSince and idleServed: the autoscaler's view of its idle time (pool_scale.go).
	idleSince  time.Time
	idleServed uint64
	limit      int                 // in-flight limit: Config.MaxInFlight, or the bridge's declared capacity
	idle       chan struct{}       // closed when a draining worker has nothing in flight
	recycle    chan recycleRequest // the monitor asks the slot to replace this worker

	rssAt    atomic.Int64 // unix ns of its last RSS reading after a call (MaxRSS)
	served   atomic.Uint64
	errors   atomic.Uint64
	handlers atomic.Pointer[workerHandlers] // its latest health check's report

	resMu   sync.Mutex
	loaded  map[string]uint64        // resource id -> version built on this worker
	loading map[string]chan struct{} // resource id -> closed when its define completes
}

// dead reports whether the process is gone (its slot will remove and replace it shortly).
func (pw *poolWorker) dead() bool {
	select {
	case <-pw.w.Done():
		return true
	default:
		return false
	}
}

// stateName is its state for WorkerStats: "exited" once the process is gone.
func (pw *poolWorker) stateName() string {
	if pw.dead() {
		return "exited"
	}
	return pw.state.String()
}

// waitQueue holds callers waiting for a free worker, oldest first.
type waitQueue struct{ l list.List }

type waiter struct {
	ch    chan *poolWorker // receives the worker reserved for this caller
	fail  chan error
	avoid *poolWorker
	since time.Time // when it started waiting (MetricQueueOldest)
}

func (q *waitQueue) len() int { return q.l.Len() }

func (q *waitQueue) push(w *waiter) *list.Element { return q.l.PushBack(w) }

func (q *waitQueue) remove(e *list.Element) { q.l.Remove(e) }

func (q *waitQueue) failAll(err error) {
	for e := q.l.Front(); e != nil; e = q.l.Front() {
		q.l.Remove(e)
		e.Value.(*waiter).fail <- err
	}
}

// pickLocked returns the least-loaded ready worker below the in-flight limit (not avoid,
// unless it is the only one). The caller holds p.mu.
//
// Ties (idle workers, typically) rotate in a fixed pool, spreading the work. An autoscaling
// pool packs them instead, onto the lowest slot index: under light load the same few workers
// serve, and the others go idle for ScaleDownIdle and are stopped. Spreading kept every worker
// of a grown pool serving now and then, so it never shrank while any load went on.
func (p *Pool) pickLocked(avoid *poolWorker) *poolWorker {
	var best, fallback *poolWorker
	pack := p.cfg.MinSize < p.cfg.MaxSize
	// Start the scan one further each time, so that ties (an idle pool) rotate.
	p.next++
	n := len(p.workers)
	for i := range n {
		pw := p.workers[(p.next+i)%n]
		if pw.state != stateReady || pw.inflight >= pw.limit || pw.dead() {
			continue
		}
		if pw == avoid {
			fallback = pw
			continue
		}
		if best == nil || pw.inflight < best.inflight ||
			(pack && pw.inflight == best.inflight && pw.slot.index < best.slot.index) {
			best = pw
		}
	}
	if best == nil {
		best = fallback
	}
	return best
}

// acquire reserves a slot on a worker: at once if one is free, else after waiting in the
// bounded queue; a full queue is ErrOverloaded right away.
func (p *Pool) acquire(ctx context.Context, avoid *poolWorker) (*poolWorker, error) {
	p.mu.Lock()
	if err := p.unavailableLocked(); err != nil {
		p.mu.Unlock()
		return nil, err
	}
	if pw := p.pickLocked(avoid); pw != nil {
		pw.inflight++
		pw.assigned++
		p.mu.Unlock()
		return pw, nil
	}
	if p.waiters.len() >= p.cfg.QueueSize {
		slots := len(p.slots) // the autoscaler's target now, not the starting Size
		p.mu.Unlock()
		p.stats.overloaded.Add(1)
		return nil, fmt.Errorf("%w: %d calls waiting for %d workers", ErrOverloaded, p.cfg.QueueSize, slots)
	}
	w := &waiter{ch: make(chan *poolWorker, 1), fail: make(chan error, 1), avoid: avoid, since: time.Now()}
	e := p.waiters.push(w)
	p.mu.Unlock()

	select {
	case pw := <-w.ch:
		return pw, nil
	case err := <-w.fail:
		return nil, err
	case <-ctx.Done():
		p.mu.Lock()
		select {
		case pw := <-w.ch: // handed a worker just as ctx ended: give it back, not served
			p.returnLocked(pw)
			p.mu.Unlock()
		case err := <-w.fail:
			p.mu.Unlock()
			return nil, err
		default:
			p.waiters.remove(e)
			p.mu.Unlock()
		}
		return nil, worker.CtxError("waiting for a worker", ctx.Err())
	}
}

// unavailableLocked is why a call cannot even wait for a worker: the pool is closed, or its
// crash-loop breaker is open and no worker is ready (a ready one still serves).
func (p *Pool) unavailableLocked() error {
	if p.failErr != nil && p.readyLocked() == 0 {
		return p.failErr
	}
	if p.closed {
		return ErrClosed
	}
	return nil
}

// release returns a reserved slot and hands it to the oldest waiter if there is one.
func (p *Pool) release(pw *poolWorker, callErr error) {
	served := pw.served.Add(1)
	if callErr != nil {
		pw.errors.Add(1)
	}
	recycle := p.cfg.MaxRequests > 0 && served >= p.cfg.MaxRequests
	p.mu.Lock()
	p.returnLocked(pw)
	p.mu.Unlock()
	if recycle {
		p.requestRecycle(pw, recycleMaxRequests, fmt.Sprintf("served %d calls (MaxRequests)", served))
	}
	if p.cfg.MaxRSS > 0 {
		p.checkRSS(pw)
	}
}

// handOffLocked gives free capacity to waiters, oldest first. The caller holds p.mu.
func (p *Pool) handOffLocked() {
	for e := p.waiters.l.Front(); e != nil; {
		w := e.Value.(*waiter)
		pw := p.pickLocked(w.avoid)
		if pw == nil {
			return
		}
		next := e.Next()
		p.waiters.remove(e)
		pw.inflight++
		pw.assigned++
		w.ch <- pw
		e = next
	}
}

// returnLocked takes one call off pw: a draining worker that has none left says so (its idle
// channel), any other hands its free slot to a waiter.
func (p *Pool) returnLocked(pw *poolWorker) {
	pw.inflight--
	if pw.state == stateDraining {
		if pw.inflight == 0 && pw.idle != nil {
			close(pw.idle)
			pw.idle = nil
		}
	} else {
		p.handOffLocked()
	}
}
