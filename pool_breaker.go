package mlbridge

import (
	"fmt"
	"slices"
	"time"
)

// The crash-loop breaker.
//
// Only failures to start count toward a crash loop: a worker that died before it was ready,
// or right after (within startGrace) with no call handed to it. A worker that had served and
// then died — an OOM kill, an operator's kill -9, a handler calling os._exit — is replaced at
// once and counts for nothing here: counting it turned five kills in a minute into a
// permanent outage.
//
// CrashLoopThreshold start failures within CrashLoopWindow open the breaker: no slot starts
// a worker, and a call finding no ready worker fails at once with ErrCrashLoop and the last
// cause instead of queueing for a worker that will not come. After a cooldown one slot tries
// a start (half-open). A worker it started that is still alive startGrace after ready closes
// the breaker (probeHolds); a failed try reopens it with twice the cooldown, up to
// maxCrashLoopCooldown.
type breaker struct {
	crashes  []time.Time   // start failures within the window
	open     bool          // p.failErr holds the cause while open
	cooldown time.Duration // of the current open period
	until    time.Time     // when a half-open try may start
	probing  bool          // a slot is trying a start while open
	changed  chan struct{} // closed and replaced at every change of state
}

// startGrace: a worker that dies this soon after becoming ready, with nothing handed to it,
// failed to start (an import that crashes a moment later, a bad model file loaded lazily).
const startGrace = 2 * time.Second

const maxCrashLoopCooldown = 5 * time.Minute

// broadcastLocked wakes slots waiting on the breaker. The caller holds p.mu.
func (b *breaker) broadcastLocked() {
	if b.changed != nil {
		close(b.changed)
	}
	b.changed = make(chan struct{})
}

// startFailed records a failure to start. probe says the failed start was the half-open try.
func (p *Pool) startFailed(s *slot, err error, probe bool) {
	s.noteRestart("failed to start: " + exitText(err))
	p.stats.crashes.Add(1)
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	b := &p.breaker
	if p.closed {
		return
	}
	if b.open {
		if probe {
			b.probing = false
			b.cooldown = min(2*b.cooldown, max(maxCrashLoopCooldown, p.cfg.CrashLoopCooldown))
			b.until = now.Add(b.cooldown)
			p.failErr = crashLoopError(len(b.crashes), p.cfg.CrashLoopWindow, err, b.cooldown)
			p.log.Warn("mlbridge: pool still failing; next try after cooldown", "cooldown", b.cooldown, "err", err)
			b.broadcastLocked()
		}
		return
	}
	b.crashes = append(b.crashes, now)
	cut := 0
	for cut < len(b.crashes) && now.Sub(b.crashes[cut]) > p.cfg.CrashLoopWindow {
		cut++
	}
	b.crashes = slices.Delete(b.crashes, 0, cut)
	if len(b.crashes) < p.cfg.CrashLoopThreshold {
		return
	}
	b.open, b.probing = true, false
	b.cooldown = p.cfg.CrashLoopCooldown
	b.until = now.Add(b.cooldown)
	p.failErr = crashLoopError(len(b.crashes), p.cfg.CrashLoopWindow, err, b.cooldown)
	p.log.Error("mlbridge: pool failing; starts paused", "err", p.failErr)
	p.failStrandedLocked()
	b.broadcastLocked()
}

// failStrandedLocked fails the queued calls when the breaker is open and no worker is ready:
// none will come before a half-open try succeeds. The caller holds p.mu.
func (p *Pool) failStrandedLocked() {
	if p.breaker.open && p.waiters.len() > 0 && p.readyLocked() == 0 {
		p.waiters.failAll(p.failErr)
	}
}

func crashLoopError(n int, window time.Duration, cause error, cooldown time.Duration) error {
	return fmt.Errorf("%w: %d workers failed to start within %s (next try in %s); last: %w",
		ErrCrashLoop, n, window, cooldown, cause)
}

// closeBreakerLocked: a worker started and held (probeHolds). The caller holds p.mu.
func (p *Pool) closeBreakerLocked() {
	b := &p.breaker
	if !b.open {
		return
	}
	b.open, b.probing, b.crashes = false, false, nil
	p.failErr = nil
	p.log.Info("mlbridge: pool recovered; a worker started")
	b.broadcastLocked()
}

// awaitStart blocks a slot while the breaker is open, until its cooldown lets this slot try
// (probe) or another slot's worker closed it. ok is false once the pool stops.
func (p *Pool) awaitStart() (probe, ok bool) {
	for {
		p.mu.Lock()
		b := &p.breaker
		if p.closed {
			p.mu.Unlock()
			return false, false
		}
		if !b.open {
			p.mu.Unlock()
			return false, true
		}
		wait := time.Until(b.until)
		if !b.probing && wait <= 0 {
			b.probing = true
			p.mu.Unlock()
			p.log.Info("mlbridge: trying to start a worker after the cooldown")
			return true, true
		}
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		changed, probing := b.changed, b.probing
		p.mu.Unlock()
		if probing || wait <= 0 {
			wait = p.cfg.CrashLoopCooldown // re-check now and then, whatever the prober does
		}
		t := time.NewTimer(wait)
		select {
		case <-changed:
		case <-t.C:
		case <-p.stop:
			t.Stop()
			return false, false
		}
		t.Stop()
	}
}

// readyLocked counts workers that can take calls. The caller holds p.mu.
func (p *Pool) readyLocked() int {
	n := 0
	for _, pw := range p.workers {
		if pw.state == stateReady && !pw.dead() {
			n++
		}
	}
	return n
}
