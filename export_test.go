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
