package bench

import (
	"context"
	"time"

	"github.com/mlbridge/mlbridge"
)

// ioWait is what each call waits in Python: a stand-in for an LM call's network time.
const ioWait = 100 * time.Millisecond

// runIOBound measures one worker under I/O-bound load: Concurrency callers each make calls
// that wait ioWait in Python, first through a sync handler (time.sleep on the worker's
// thread pool), then through an async one (asyncio.sleep on its event loop).
func runIOBound(ctx context.Context, o Options, python string) (*Report, error) {
	b, err := mlbridge.Open(ctx, mlbridge.Config{Bridge: o.Bridge, Python: python, Logger: o.Logger,
		MaxInFlight: max(o.Concurrency, 1024)})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	args := map[string]any{"seconds": ioWait.Seconds()}
	sync := func(ctx context.Context) error { _, err := b.Call(ctx, "sync_sleep", args); return err }
	async := func(ctx context.Context) error { _, err := b.Call(ctx, "sleep", args); return err }

	phase := o.Duration / 2
	s := concurrentCalls(ctx, sync, o.Concurrency, phase)
	a := concurrentCalls(ctx, async, o.Concurrency, phase)
	return &Report{
		Scenario: "io-bound", Workers: 1, Concurrency: o.Concurrency, DurationS: o.Duration.Seconds(), Rounds: 1,
		SyncCallsPerS: s.rate, AsyncCallsPerS: a.rate, CallsPerS: a.rate,
		LoadedP50us: micros(a.lat.percentile(0.5)), LoadedP99us: micros(a.lat.percentile(0.99)),
		Calls: s.calls + a.calls, Errors: s.errors + a.errors,
	}, nil
}
