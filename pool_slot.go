package mlbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/mlbridge/mlbridge/internal/worker"
)

// slot is one of the pool's places (Size, or the autoscaler's target); its supervisor
// goroutine keeps a worker in it until the pool stops or the autoscaler retires the slot.
type slot struct {
	index       int
	retire      chan struct{} // closed by the autoscaler (under Pool.mu): stop the worker, end
	mu          sync.Mutex
	restarts    int
	lastReason  string    // why its latest worker went or failed to start (SlotStats)
	lastRestart time.Time // when
}

func newSlot(index int) *slot { return &slot{index: index, retire: make(chan struct{})} }

// retired reports whether the autoscaler retired the slot.
func (s *slot) retired() bool {
	select {
	case <-s.retire:
		return true
	default:
		return false
	}
}

// noteRestart counts a worker replaced, and why (an error's text, or a recycle's detail).
func (s *slot) noteRestart(reason string) {
	s.mu.Lock()
	s.restarts++
	s.lastReason, s.lastRestart = reason, time.Now()
	s.mu.Unlock()
}

// exitText describes a worker's end for SlotStats: its error, else that it exited.
func exitText(err error) string {
	if err == nil {
		return "worker exited"
	}
	return err.Error()
}

// runSlot supervises one slot for the pool's life: start a worker, put it in service, and
// when it dies or is recycled, start the next. A worker that had served is replaced at once;
// failures to start back off and count toward the crash-loop breaker (pool_breaker.go).
// first receives the outcome of the first start, which startCtx bounds (OpenPool's ctx).
func (p *Pool) runSlot(startCtx context.Context, s *slot, first chan<- error) {
	defer p.slotsWG.Done()
	backoff := p.cfg.RestartBackoff
	for {
		if s.retired() {
			return // retired while its worker was gone: nothing to stop
		}
		probe := false
		if first == nil {
			var ok bool
			if probe, ok = p.awaitStart(); !ok {
				return
			}
		}
		pw, err := p.startWorker(startCtx, s)
		if err != nil && p.isStopping() && startCtx.Err() == nil {
			err = ErrClosed // cut short by Close (or by OpenPool giving up for another reason)
		}
		if !errors.Is(err, ErrClosed) {
			p.inst.started(err)
		}
		startCtx = context.Background()
		if first != nil {
			first <- err
			first = nil
			if err != nil {
				return // OpenPool reports it
			}
		}
		if err != nil {
			if p.isStopping() {
				return
			}
			p.log.Warn("mlbridge: worker failed to start", "slot", s.index, "err", err)
			p.startFailed(s, err, probe)
			if !p.sleep(jitter(backoff)) {
				return
			}
			backoff = min(2*backoff, p.cfg.MaxRestartBackoff)
			continue
		}
		if probe && !p.probeHolds(pw) {
			p.remove(pw)
			p.inst.exited(exitStartFailure)
			if p.isStopping() {
				return
			}
			p.log.Warn("mlbridge: worker died right after start; the pool stays failing", "slot", s.index, "err", pw.w.Err())
			p.startFailed(s, pw.w.Err(), true)
			if !p.sleep(jitter(backoff)) {
				return
			}
			backoff = min(2*backoff, p.cfg.MaxRestartBackoff)
			continue
		}
		go p.watchLiveness(pw)
		select {
		case <-pw.w.Done():
			inSnapshot := p.remove(pw)
			if s.retired() {
				p.inst.exited(exitScaledDown) // died while being stopped: it was leaving anyway
				return
			}
			if inSnapshot {
				return // Shutdown's snapshot has it: counted there (pool.go, shutdownExit)
			}
			err := pw.w.Err()
			if p.diedStarting(pw) {
				p.inst.exited(exitStartFailure)
				p.log.LogAttrs(context.Background(), slog.LevelWarn, "mlbridge: worker died right after start; restarting",
					append(worker.LostCallAttrs(pw.w.LostCalls()), slog.Int("slot", s.index), slog.Any("err", err))...)
				p.startFailed(s, err, false)
				if !p.sleep(jitter(backoff)) {
					return
				}
				backoff = min(2*backoff, p.cfg.MaxRestartBackoff)
				continue
			}
			// It had served (or lived past startGrace): a kill, an OOM, a crashing call —
			// not a crash loop. Replace it now; restarts after it start from the short backoff.
			p.inst.exited(exitCrash)
			// joined to the traces of the calls it took down
			p.log.LogAttrs(context.Background(), slog.LevelWarn, "mlbridge: worker died; replacing it",
				append(worker.LostCallAttrs(pw.w.LostCalls()), slog.Int("slot", s.index), slog.Any("err", err))...)
			s.noteRestart(exitText(err))
			p.stats.crashes.Add(1)
			backoff = p.cfg.RestartBackoff
			if time.Since(pw.readyAt) < startGrace {
				// Served, yet short-lived: maybe a call that kills every worker it reaches.
				// One short pause keeps that from becoming a tight restart loop.
				if !p.sleep(jitter(backoff)) {
					return
				}
			}
		case req := <-pw.recycle:
			p.log.Info("mlbridge: recycling worker", "slot", s.index, "pid", pw.w.Pid(), "reason", req.detail)
			s.noteRestart("recycled: " + req.detail)
			p.stats.recycles.Add(1)
			p.inst.recycled(req.reason)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), p.cfg.DrainTimeout+10*time.Second)
				defer cancel()
				p.drainAndStop(ctx, pw)
				p.remove(pw)
				p.inst.exited(exitRecycled)
			}()
		case <-s.retire:
			// The autoscaler marked the worker draining: let its calls finish, then stop it.
			p.log.Info("mlbridge: stopping an idle worker (scale down)", "slot", s.index, "pid", pw.w.Pid())
			ctx, cancel := context.WithTimeout(context.Background(), p.cfg.DrainTimeout+10*time.Second)
			p.drainAndStop(ctx, pw)
			cancel()
			p.remove(pw)
			p.inst.exited(exitScaledDown) // Shutdown counts no draining worker
			return
		case <-p.stop:
			if s.retired() {
				p.inst.exited(exitScaledDown) // draining when Shutdown came: not counted there
			}
			select {
			case <-pw.recycle:
				// Marked for recycling, so Shutdown left it to this branch to count, but the
				// stop won the select: Shutdown stops it, and it is counted here.
				p.inst.exited(exitShutdown)
			default:
			}
			return // Shutdown drains and stops the workers
		}
	}
}

// watchLiveness takes pw out of rotation, and has its slot replace it, once it stops
// answering liveness pings (a wedged event loop). Its calls may still finish: a worker
// silent past HeartbeatTimeout is killed by internal/worker, failing them.
func (p *Pool) watchLiveness(pw *poolWorker) {
	select {
	case <-pw.w.Unresponsive():
		p.requestRecycle(pw, recycleWedged, fmt.Sprintf("unresponsive: no answer to a liveness ping for %s", p.wcfg.LivenessTimeoutOrDefault()))
	case <-pw.w.Done():
	case <-p.stop:
	}
}

// probeHolds waits while a worker started by the breaker's half-open try proves itself: it
// closes the breaker once the worker lived startGrace (a worker that becomes ready only to
// die a moment later must not heal the pool), and reports false if the worker died first.
func (p *Pool) probeHolds(pw *poolWorker) bool {
	t := time.NewTimer(startGrace)
	defer t.Stop()
	select {
	case <-pw.w.Done():
		return false
	case <-t.C:
		p.mu.Lock()
		p.closeBreakerLocked()
		p.mu.Unlock()
		return true
	case <-p.stop:
		return true // the main loop sees the stop
	}
}

// diedStarting reports whether a dead worker never really started: nothing was handed to
// it and it died within startGrace of becoming ready.
func (p *Pool) diedStarting(pw *poolWorker) bool {
	p.mu.Lock()
	assigned := pw.assigned
	p.mu.Unlock()
	return assigned == 0 && time.Since(pw.readyAt) < startGrace
}

// startWorker starts a process, applies every global definition to it, and only then
// puts it in service. parent bounds the start (besides Close).
func (p *Pool) startWorker(parent context.Context, s *slot) (*poolWorker, error) {
	start := time.Now()
	ctx, cancel := context.WithCancel(parent)
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
		w: w, slot: s, limit: p.workerLimit(w), recycle: make(chan recycleRequest, 1),
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
	pw.readyAt = time.Now()
	p.workers = append(p.workers, pw)
	p.handOffLocked()
	p.mu.Unlock()
	info := infoOf(w)
	p.info.Store(&info)
	p.noteBatched(w.Info().Batched)
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

// remove takes pw out of the pool; true if Shutdown had begun by then, when its snapshot of
// the workers (taken under p.mu, with p.closed set) held pw.
func (p *Pool) remove(pw *poolWorker) (inShutdownSnapshot bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.workers = slices.DeleteFunc(p.workers, func(x *poolWorker) bool { return x == pw })
	p.migration.retire(pw.handlers.Load()) // under p.mu: Stats sees it live or retired, never both
	p.failStrandedLocked()
	return p.closed
}

// recycleRequest asks a slot to replace its worker: why, for MetricWorkerRecycles, and the
// detail logged.
type recycleRequest struct {
	reason recycleReason
	detail string
}

// requestRecycle marks a worker draining (no new calls) and asks its slot to replace it.
// While the crash-loop breaker is open only a wedged worker goes: no replacement would
// start, so recycling a serving one only took capacity away (the last one: an outage). The
// limit is checked again later (the next call, the monitor), and recycles then.
func (p *Pool) requestRecycle(pw *poolWorker, reason recycleReason, detail string) {
	p.mu.Lock()
	if pw.state != stateReady || p.closed || (p.breaker.open && reason != recycleWedged) {
		p.mu.Unlock()
		return
	}
	pw.state = stateDraining
	p.failStrandedLocked()
	p.mu.Unlock()
	select {
	case pw.recycle <- recycleRequest{reason, detail}:
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
