package mlbridge

import (
	"context"
	"fmt"
	"time"
)

// monitor checks workers every HealthInterval and recycles those past a limit: age, RSS of
// the Python process, or threads abandoned by handlers that ignored their deadline.
func (p *Pool) monitor() {
	t := time.NewTicker(p.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		workers := append([]*poolWorker(nil), p.workers...)
		p.mu.Unlock()
		for _, pw := range workers {
			if reason, detail := p.needsRecycle(pw); detail != "" {
				p.requestRecycle(pw, reason, detail)
			}
		}
	}
}

// needsRecycle says why pw should be replaced (detail "" if it should not).
func (p *Pool) needsRecycle(pw *poolWorker) (reason recycleReason, detail string) {
	if p.cfg.MaxAge > 0 {
		if age := time.Since(pw.w.StartedAt()); age > p.cfg.MaxAge {
			return recycleMaxAge, fmt.Sprintf("age %s over MaxAge %s", age.Round(time.Second), p.cfg.MaxAge)
		}
	}
	if p.cfg.MaxRSS > 0 {
		if rss, err := processRSS(pw.w.Pid()); err == nil && rss > p.cfg.MaxRSS {
			return recycleRSS, fmt.Sprintf("RSS %d bytes over MaxRSS %d", rss, p.cfg.MaxRSS)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.HealthInterval)
	defer cancel()
	if n := p.healthCheck(ctx, pw); n > 0 {
		return recycleAbandoned, fmt.Sprintf("%d abandoned handler thread(s)", n)
	}
	return 0, ""
}

// checkRSS recycles pw once its RSS passed MaxRSS, read as calls complete: the monitor's
// reading every HealthInterval let a handler growing 50 MB per call overshoot MaxRSS by 1.7×.
// At most one reading per worker per millisecond keeps a fast call path cheap. Where a reading
// costs a process (macOS: ps), only the monitor reads (rssPerCall).
func (p *Pool) checkRSS(pw *poolWorker) {
	if !rssPerCall {
		return
	}
	now := time.Now().UnixNano()
	last := pw.rssAt.Load()
	if now-last < int64(time.Millisecond) || !pw.rssAt.CompareAndSwap(last, now) {
		return
	}
	if rss, err := processRSS(pw.w.Pid()); err == nil && rss > p.cfg.MaxRSS {
		p.requestRecycle(pw, recycleRSS, fmt.Sprintf("RSS %d bytes over MaxRSS %d", rss, p.cfg.MaxRSS))
	}
}

// healthCheck asks the worker how it is: it keeps the handler report (modes and calls per
// kind) for Stats and returns the number of abandoned handler threads (0 if it did not answer).
func (p *Pool) healthCheck(ctx context.Context, pw *poolWorker) (abandoned int) {
	var h struct {
		Abandoned int             `msgpack:"abandoned"`
		Handlers  *workerHandlers `msgpack:"handlers"`
	}
	c, err := pw.w.Send(ctx, "health_check", nil, false)
	if err != nil {
		return 0
	}
	raw, err := c.Result(ctx)
	if err != nil || (Result{raw: raw}).Decode(&h) != nil {
		return 0
	}
	if h.Handlers != nil {
		pw.handlers.Store(h.Handlers)
	}
	return h.Abandoned
}
