package bench

import (
	"context"
	"time"

	"github.com/mlbridge/mlbridge"
)

// ioWait is what each call waits in Python: a stand-in for an LM call's network time.
const ioWait = 100 * time.Millisecond

// runIOBound measures one worker under I/O-bound load: Concurrency callers each call the echo
// bridge's lm_wait op, which waits ioWait in Python — first served by its sync implementation
// (time.sleep on the worker's thread pool), then, after the per-op switch, by its async one
// (asyncio.sleep on the event loop). Same op, same arguments: only the switch differs.
func runIOBound(ctx context.Context, o Options, python string) (*Report, error) {
	b, err := mlbridge.Open(ctx, mlbridge.Config{Bridge: o.Bridge, Python: python, Logger: o.Logger,
		MaxInFlight: max(o.Concurrency, 1024)})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	args := map[string]any{"seconds": ioWait.Seconds()}
	wait := func(ctx context.Context) error { _, err := b.Call(ctx, "lm_wait", args); return err }
	phase := o.Duration / 2
	var s, a loadResult
	for _, run := range []struct {
		mode string
		res  *loadResult
	}{{"sync", &s}, {"async", &a}} {
		if _, err := b.Call(ctx, "set_handler_mode", map[string]any{"op": "lm_wait", "mode": run.mode}); err != nil {
			return nil, err
		}
		*run.res = concurrentCalls(ctx, wait, o.Concurrency, phase)
	}
	return &Report{
		Scenario: "io-bound", Workers: 1, Concurrency: o.Concurrency, DurationS: o.Duration.Seconds(), Rounds: 1,
		SyncCallsPerS: s.rate, AsyncCallsPerS: a.rate, CallsPerS: a.rate,
		LoadedP50us: micros(a.lat.percentile(0.5)), LoadedP99us: micros(a.lat.percentile(0.99)),
		Calls: s.calls + a.calls, Errors: s.errors + a.errors,
	}, nil
}
