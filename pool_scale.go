package mlbridge

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"
)

// ScalingStats describes a pool's autoscaling (PoolStats.Scaling). A fixed pool reports
// Enabled false and its size as Min, Max and Target.
type ScalingStats struct {
	Enabled       bool          `json:"enabled"`
	Min           int           `json:"min"`
	Max           int           `json:"max"`
	Target        int           `json:"target"` // slots now: each has, or is starting, a worker
	ScaleDownIdle time.Duration `json:"scale_down_idle_ns"`
	Ups           uint64        `json:"ups"`   // scale-up events
	Downs         uint64        `json:"downs"` // scale-down events
	Last          *ScaleEvent   `json:"last,omitempty"`
}

// ScaleEvent is one decision of the autoscaler.
type ScaleEvent struct {
	At        time.Time `json:"at"`
	Direction string    `json:"direction"` // up or down
	From      int       `json:"from"`
	To        int       `json:"to"`
	Reason    string    `json:"reason"`
}

// scaler is the autoscaler's state, guarded by Pool.mu.
type scaler struct {
	streak     int // pressured checks in a row (decideScale)
	ups, downs uint64
	last       *ScaleEvent
}

// autoscale checks the pool every scaleInterval and applies decideScale, for the pool's life.
func (p *Pool) autoscale() {
	t := time.NewTicker(scaleInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.scaleOnce(now)
		}
	}
}

// scaleOnce observes, decides and applies under p.mu, so that the slots it counts are the
// slots it changes; logs and metrics come after.
func (p *Pool) scaleOnce(now time.Time) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	in := p.scaleInputLocked(now)
	d := decideScale(in)
	p.scaling.streak = d.Streak
	changed := 0
	switch {
	case d.Delta > 0:
		changed = p.addSlotsLocked(d.Delta)
	case d.Delta < 0:
		changed = -p.retireIdleLocked(-d.Delta, now)
	}
	var ev ScaleEvent
	if changed != 0 {
		ev = ScaleEvent{At: now, Direction: "up", From: in.Target, To: len(p.slots), Reason: d.Reason}
		if changed < 0 {
			ev.Direction = "down"
			ev.Reason = fmt.Sprintf("idle for %s", p.cfg.ScaleDownIdle)
			p.scaling.downs++
		} else {
			p.scaling.ups++
		}
		p.scaling.last = &ev
	}
	p.mu.Unlock()
	if changed == 0 {
		return
	}
	p.inst.scaled(changed > 0)
	p.log.Info("mlbridge: pool scaled", "direction", ev.Direction, "from", ev.From, "to", ev.To,
		"reason", ev.Reason, "waiting", in.Waiting, "oldest_wait", in.OldestWait.Round(time.Millisecond))
}

// scaleInputLocked observes the pool, and tracks each ready worker's idle time: idle means
// nothing in flight and no call served since the previous check (read off the call path).
// The caller holds p.mu.
func (p *Pool) scaleInputLocked(now time.Time) scaleInput {
	in := scaleInput{
		Target: len(p.slots), Min: p.cfg.MinSize, Max: p.cfg.MaxSize, Waiting: p.waiters.len(),
		BreakerOpen: p.breaker.open, Streak: p.scaling.streak,
	}
	if e := p.waiters.l.Front(); e != nil {
		in.OldestWait = now.Sub(e.Value.(*waiter).since)
	}
	readySlots := map[*slot]bool{}
	for _, pw := range p.workers {
		if pw.state != stateReady || pw.dead() {
			continue
		}
		in.Ready++
		readySlots[pw.slot] = true
		if served := pw.served.Load(); pw.inflight > 0 || served != pw.idleServed || pw.idleSince.IsZero() {
			pw.idleSince, pw.idleServed = now, served
		}
		if now.Sub(pw.idleSince) >= p.cfg.ScaleDownIdle {
			in.Idle++
		}
	}
	for _, s := range p.slots {
		if !readySlots[s] {
			in.Starting++
		}
	}
	return in
}

// addSlotsLocked adds n slots, each at the lowest free index (not held by a slot, nor by a
// retired slot's worker still draining: stats and metrics key workers by slot), and starts
// their supervisors. It returns how many it added. The caller holds p.mu (p.closed is false:
// slotsWG.Add happens before Shutdown's Wait).
func (p *Pool) addSlotsLocked(n int) int {
	for range n {
		idx := 0
		for slices.ContainsFunc(p.slots, func(s *slot) bool { return s.index == idx }) ||
			slices.ContainsFunc(p.workers, func(pw *poolWorker) bool { return pw.slot.index == idx }) {
			idx++
		}
		s := newSlot(idx)
		i, _ := slices.BinarySearchFunc(p.slots, idx, func(s *slot, idx int) int { return s.index - idx })
		p.slots = slices.Insert(p.slots, i, s)
		p.slotsWG.Add(1)
		go p.runSlot(context.Background(), s, nil)
	}
	return n
}

// retireIdleLocked stops up to n idle workers, highest slot first: each is marked draining
// (no new call reaches it), its slot leaves p.slots, and its supervisor stops it gracefully
// (runSlot). It returns how many it retired. The caller holds p.mu.
func (p *Pool) retireIdleLocked(n int, now time.Time) int {
	var idle []*poolWorker
	for _, pw := range p.workers {
		if pw.state == stateReady && !pw.dead() && pw.inflight == 0 && !pw.idleSince.IsZero() &&
			now.Sub(pw.idleSince) >= p.cfg.ScaleDownIdle {
			idle = append(idle, pw)
		}
	}
	slices.SortFunc(idle, func(a, b *poolWorker) int { return b.slot.index - a.slot.index })
	idle = idle[:min(n, len(idle), len(p.slots)-p.cfg.MinSize)]
	for _, pw := range idle {
		pw.state = stateDraining
		p.slots = slices.DeleteFunc(p.slots, func(s *slot) bool { return s == pw.slot })
		close(pw.slot.retire)
	}
	return len(idle)
}

// scalingStatsLocked reports autoscaling for PoolStats. The caller holds p.mu.
func (p *Pool) scalingStatsLocked() ScalingStats {
	s := ScalingStats{
		Enabled: p.cfg.MinSize < p.cfg.MaxSize, Min: p.cfg.MinSize, Max: p.cfg.MaxSize, Target: len(p.slots),
		Ups: p.scaling.ups, Downs: p.scaling.downs,
	}
	if s.Enabled {
		s.ScaleDownIdle = p.cfg.ScaleDownIdle
	}
	if p.scaling.last != nil {
		ev := *p.scaling.last
		s.Last = &ev
	}
	return s
}

// autoscaling reports whether the configuration asks for an autoscaling pool.
func (c PoolConfig) autoscaling() bool { return c.MinSize > 0 || c.MaxSize > 0 }

// validateSize checks the sizes before defaults apply: MinSize ≤ MaxSize, and Size, if set,
// within them.
func (c PoolConfig) validateSize() error {
	switch {
	case c.MinSize < 0 || c.MaxSize < 0 || c.Size < 0:
		return fmt.Errorf("%w: pool sizes cannot be negative (Size %d, MinSize %d, MaxSize %d)", ErrInvalidConfiguration, c.Size, c.MinSize, c.MaxSize)
	case c.MaxSize > 0 && c.MinSize > c.MaxSize:
		return fmt.Errorf("%w: MinSize %d is above MaxSize %d", ErrInvalidConfiguration, c.MinSize, c.MaxSize)
	case slices.ContainsFunc(slices.Collect(maps.Values(c.Batching)), func(b BatchPolicy) bool { return b.MaxSize < 0 || b.MaxWait < 0 }):
		return fmt.Errorf("%w: a Batching policy has a negative MaxSize or MaxWait", ErrInvalidConfiguration)
	case c.autoscaling() && c.Size > 0 && (c.Size < c.MinSize || (c.MaxSize > 0 && c.Size > c.MaxSize)):
		return fmt.Errorf("%w: Size %d (the starting size) is not within MinSize %d and MaxSize %d", ErrInvalidConfiguration, c.Size, c.MinSize, c.MaxSize)
	}
	return nil
}
