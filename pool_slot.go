package mlbridge

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/mlbridge/mlbridge/internal/worker"
)

// slot is one of the pool's Size places; its supervisor goroutine keeps a worker in it.
type slot struct {
	index    int
	mu       sync.Mutex
	restarts int
	lastErr  error
}

func (s *slot) noteRestart(err error) {
	s.mu.Lock()
	s.restarts++
	if err != nil {
		s.lastErr = err
	}
	s.mu.Unlock()
}

// runSlot supervises one slot for the pool's life: start a worker, put it in service, and
// when it dies or is recycled, start the next — with backoff after crashes, and giving up
// (the whole pool fails) on a crash loop. first receives the outcome of the first start.
func (p *Pool) runSlot(s *slot, first chan<- error) {
	defer p.slotsWG.Done()
	backoff := p.cfg.RestartBackoff
	for {
		pw, err := p.startWorker(s)
		if first != nil {
			first <- err
			first = nil
			if err != nil {
				return // OpenPool reports it
			}
		}
		if err != nil {
			if p.crashed(s, err) {
				return
			}
			if !p.sleep(jitter(backoff)) {
				return
			}
			backoff = min(2*backoff, p.cfg.MaxRestartBackoff)
			continue
		}
		select {
		case <-pw.w.Done():
			p.remove(pw)
			if p.isStopping() {
				return
			}
			err := pw.w.Err()
			p.log.Warn("mlbridge: worker died; restarting", "slot", s.index, "err", err)
			if p.crashed(s, err) {
				return
			}
			// A worker that lived long enough was healthy: start over from the short backoff.
			if time.Since(pw.w.StartedAt()) > p.cfg.CrashLoopWindow {
				backoff = p.cfg.RestartBackoff
			}
			if !p.sleep(jitter(backoff)) {
				return
			}
			backoff = min(2*backoff, p.cfg.MaxRestartBackoff)
		case reason := <-pw.recycle:
			p.log.Info("mlbridge: recycling worker", "slot", s.index, "pid", pw.w.Pid(), "reason", reason)
			s.noteRestart(nil)
			p.stats.recycles.Add(1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), p.cfg.DrainTimeout+10*time.Second)
				defer cancel()
				p.drainAndStop(ctx, pw)
				p.remove(pw)
			}()
		case <-p.stop:
			return // Shutdown drains and stops the workers
		}
	}
}

// startWorker starts a process, applies every global definition to it, and only then
// puts it in service.
func (p *Pool) startWorker(s *slot) (*poolWorker, error) {
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	wcfg := p.wcfg
	if p.cfg.Preload {
		z, err := p.currentZygote()
		if err != nil {
			return nil, err
		}
		wcfg.Zygote = z
	}
	w, err := worker.Start(ctx, wcfg)
	if err != nil {
		return nil, err
	}
	pw := &poolWorker{
		w: w, slot: s, limit: p.workerLimit(w), recycle: make(chan string, 1),
		loaded: map[string]uint64{}, loading: map[string]chan struct{}{},
	}
	if err := p.applyGlobals(ctx, pw); err != nil {
		w.Kill("global configuration failed")
		<-w.Done()
		return nil, fmt.Errorf("mlbridge: applying global definitions to a new worker: %w", err)
	}
	hctx, hcancel := context.WithTimeout(ctx, p.cfg.HealthInterval)
	p.healthCheck(hctx, pw) // its handler modes, for Stats from the start
	hcancel()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = w.Shutdown(context.Background())
		return nil, ErrClosed
	}
	p.workers = append(p.workers, pw)
	p.handOffLocked()
	p.mu.Unlock()
	info := infoOf(w)
	p.info.Store(&info)
	p.log.Info("mlbridge: worker ready", "slot", s.index, "pid", w.Pid(), "took", time.Since(start).Round(time.Millisecond))
	return pw, nil
}

// workerLimit is the in-flight limit of w: configured, else declared by the bridge, else 64.
func (p *Pool) workerLimit(w *worker.Worker) int {
	if p.cfg.MaxInFlight > 0 {
		return p.cfg.MaxInFlight
	}
	var rt struct {
		Capacity int `msgpack:"capacity"`
	}
	if raw := w.Info().Runtime; len(raw) > 0 && (Result{raw: raw}).Decode(&rt) == nil && rt.Capacity > 0 {
		return rt.Capacity
	}
	return 64
}

// crashed records a crash and reports whether the pool must stop restarting.
func (p *Pool) crashed(s *slot, err error) bool {
	s.noteRestart(err)
	p.stats.crashes.Add(1)
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return true
	}
	p.crashes = append(p.crashes, now)
	cut := 0
	for cut < len(p.crashes) && now.Sub(p.crashes[cut]) > p.cfg.CrashLoopWindow {
		cut++
	}
	p.crashes = slices.Delete(p.crashes, 0, cut)
	if len(p.crashes) < p.cfg.CrashLoopThreshold {
		return false
	}
	if p.failErr == nil {
		p.failErr = fmt.Errorf("%w: %d crashes within %s, pool stopped; last: %w",
			ErrCrashLoop, len(p.crashes), p.cfg.CrashLoopWindow, err)
		p.log.Error("mlbridge: pool failed", "err", p.failErr)
		p.waiters.failAll(p.failErr)
	}
	return true
}

// remove takes a worker out of the pool's list.
func (p *Pool) remove(pw *poolWorker) {
	p.mu.Lock()
	p.workers = slices.DeleteFunc(p.workers, func(x *poolWorker) bool { return x == pw })
	p.migration.retire(pw.handlers.Load()) // under p.mu: Stats sees it live or retired, never both
	p.mu.Unlock()
}

// requestRecycle marks a worker draining (no new calls) and asks its slot to replace it.
func (p *Pool) requestRecycle(pw *poolWorker, reason string) {
	p.mu.Lock()
	if pw.state != stateReady || p.closed {
		p.mu.Unlock()
		return
	}
	pw.state = stateDraining
	p.mu.Unlock()
	select {
	case pw.recycle <- reason:
	default:
	}
}

// drainAndStop waits until a draining worker has nothing in flight (or ctx ends), then
// stops it gracefully.
func (p *Pool) drainAndStop(ctx context.Context, pw *poolWorker) {
	p.mu.Lock()
	var idle chan struct{}
	if pw.inflight > 0 {
		idle = make(chan struct{})
		pw.idle = idle
	}
	p.mu.Unlock()
	if idle != nil {
		t := time.NewTimer(p.cfg.DrainTimeout)
		select {
		case <-idle:
		case <-pw.w.Done():
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	hctx, hcancel := context.WithTimeout(ctx, p.cfg.HealthInterval)
	p.healthCheck(hctx, pw) // its last counts, kept when it leaves the pool
	hcancel()
	if err := pw.w.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		p.log.Warn("mlbridge: stopping worker", "pid", pw.w.Pid(), "err", err)
	}
}

func (p *Pool) isStopping() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// sleep waits d unless the pool stops first.
func (p *Pool) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.stop:
		return false
	}
}

// jitter spreads restarts of workers that died together (±25%).
func jitter(d time.Duration) time.Duration {
	return d - d/4 + time.Duration(rand.Int64N(int64(d)/2+1))
}
