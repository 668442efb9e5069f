package mlbridge

import (
	"context"
	"time"

	"github.com/mlbridge/mlbridge/internal/worker"
)

// SetLauncher makes workers of c come from l instead of local Python processes
// (internal/worker/fakeworker's launcher, in tests).
func SetLauncher(c *Config, l worker.Launcher) { c.launcher = l }

// RecordCall is the pool's bookkeeping of one finished call alone (benchmarks of its cost).
func (p *Pool) RecordCall(ctx context.Context, op string, start time.Time, err error) {
	p.record(ctx, modeCall, op, start, err)
}

// KillBeforeShutdownSnapshot makes p's Shutdown kill the worker pid and wait until its handle
// saw it die, just before Shutdown takes its snapshot of the workers (under the pool's lock,
// so its slot cannot have removed it yet): a worker that died as Shutdown began.
func KillBeforeShutdownSnapshot(p *Pool, pid int) {
	p.beforeShutdownSnapshot = func() {
		for _, pw := range p.workers {
			if pw.w.Pid() == pid {
				pw.w.Kill("killed by the test just before Shutdown")
				<-pw.w.Done()
			}
		}
	}
}

// SetBatcherIdle sets how long an unused batcher lives before a sweep drops it.
func SetBatcherIdle(p *Pool, d time.Duration) {
	p.batchMu.Lock()
	p.batchIdle = d
	p.batchMu.Unlock()
}

// Batchers is how many batchers p holds (one per batched op and set of Uses).
func Batchers(p *Pool) int {
	p.batchMu.Lock()
	defer p.batchMu.Unlock()
	return len(p.batchers)
}
