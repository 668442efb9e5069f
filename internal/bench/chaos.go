package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mlbridge/mlbridge"
)

// killEvery is the pace of the kill load: one worker SIGKILLed this often.
const killEvery = 500 * time.Millisecond

// runChaos runs the fault loads of docs/RELIABILITY.md and reports what held:
//   - kill: a worker SIGKILLed every 500 ms for Duration while Concurrency callers make
//     idempotent calls, without and with Preload — failed calls, and how long after the last
//     kill the pool was full again;
//   - wedge: one worker's event loop stopped by a C call holding the GIL, then by a blocking
//     call in an async def, while callers keep going — how long until it left rotation, and
//     until it was killed;
//   - host death: a `mlbridge serve` whose workers started children is killed (SIGKILL,
//     SIGTERM; without and with Preload) — how long until every one of those processes is gone.
func runChaos(ctx context.Context, o Options, python string) (*Report, error) {
	rep := &Report{Scenario: "chaos", Workers: o.Workers, Concurrency: o.Concurrency, DurationS: o.Duration.Seconds(), Rounds: 1}
	cfg := mlbridge.Config{Bridge: o.Bridge, Python: python, Logger: o.Logger}
	for _, preload := range []bool{false, true} {
		k, err := killLoad(ctx, cfg, o, preload)
		if err != nil {
			return nil, fmt.Errorf("kill load (preload %v): %w", preload, err)
		}
		rep.Kills += k.kills
		rep.KillFailedCalls += k.failed
		rep.Calls += k.calls
		if preload {
			rep.KillRecoveryPreloadMs = k.recoveryMs
		} else {
			rep.KillRecoveryMs = k.recoveryMs
		}
	}
	for _, op := range []string{"wedge_gil", "block_loop"} {
		w, err := wedgeLoad(ctx, cfg, o, op)
		if err != nil {
			return nil, fmt.Errorf("wedge load (%s): %w", op, err)
		}
		rep.WedgeFailedCalls += w.failed
		rep.Calls += w.calls
		rep.WedgeKillMs = max(rep.WedgeKillMs, w.killMs)
		if op == "wedge_gil" {
			rep.WedgeDetectMs = w.detectMs
		} else {
			rep.WedgeAsyncDetectMs = w.detectMs
		}
	}
	hd, err := hostDeathLoads(ctx, o, python)
	if err != nil {
		return nil, fmt.Errorf("host death: %w", err)
	}
	rep.HostDeathCases = hd
	for _, c := range hd {
		rep.HostDeathMaxMs = max(rep.HostDeathMaxMs, c.CleanupMs)
		rep.HostDeathLeftover += c.Leftover
	}
	return rep, nil
}

type killResult struct {
	kills         int
	calls, failed int64
	recoveryMs    float64
}

// killLoad SIGKILLs a random worker every killEvery for o.Duration under o.Concurrency
// idempotent callers, then measures how long the pool takes to be full again.
func killLoad(ctx context.Context, cfg mlbridge.Config, o Options, preload bool) (killResult, error) {
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{Config: cfg, Size: o.Workers, Preload: preload})
	if err != nil {
		return killResult{}, err
	}
	defer p.Close()
	var res killResult
	callers := startCallers(ctx, p, o.Concurrency)
	end := time.Now().Add(o.Duration)
	var killed []int
	for time.Now().Before(end) && ctx.Err() == nil {
		time.Sleep(killEvery)
		var ps []int
		for _, w := range p.Stats().Workers {
			if w.State == "ready" && !slices.Contains(killed, w.Pid) {
				ps = append(ps, w.Pid)
			}
		}
		if len(ps) == 0 {
			continue
		}
		victim := ps[rand.IntN(len(ps))]
		if kill(victim, syscall.SIGKILL) == nil {
			killed = append(killed, victim)
		}
	}
	lastKill := time.Now()
	for !fullWithout(p, killed) {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if time.Since(lastKill) > time.Minute {
			return res, errors.New("the pool was not full a minute after the last kill")
		}
		time.Sleep(2 * time.Millisecond)
	}
	res.recoveryMs = float64(time.Since(lastKill).Microseconds()) / 1e3
	res.calls, res.failed = callers.stop()
	res.kills = len(killed)
	if err := p.Err(); err != nil {
		return res, fmt.Errorf("pool failed under kills: %w", err)
	}
	return res, nil
}

// fullWithout: every slot has a ready worker and none of them is one of gone.
func fullWithout(p *mlbridge.Pool, gone []int) bool {
	st := p.Stats()
	if st.Ready != st.Size {
		return false
	}
	for _, w := range st.Workers {
		if slices.Contains(gone, w.Pid) {
			return false
		}
	}
	return true
}

type wedgeResult struct {
	calls, failed    int64
	detectMs, killMs float64
}

// wedgeLoad wedges one worker's event loop with op (for a minute, far past detection) while
// callers keep calling: the time from the wedging call until a worker leaves rotation
// (detectMs), and until the wedged worker is killed and the call fails (killMs).
func wedgeLoad(ctx context.Context, cfg mlbridge.Config, o Options, op string) (wedgeResult, error) {
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{Config: cfg, Size: max(o.Workers, 2)})
	if err != nil {
		return wedgeResult{}, err
	}
	defer p.Close()
	callers := startCallers(ctx, p, o.Concurrency)
	time.Sleep(200 * time.Millisecond) // callers in full flow before the wedge
	start := time.Now()
	ended := make(chan error, 1)
	go func() {
		_, err := p.Call(ctx, op, map[string]any{"seconds": 60.0})
		ended <- err
	}()
	var res wedgeResult
	for res.detectMs == 0 {
		for _, w := range p.Stats().Workers {
			if w.State == "draining" {
				res.detectMs = float64(time.Since(start).Microseconds()) / 1e3
			}
		}
		select {
		case err = <-ended:
			return res, fmt.Errorf("the wedging call ended (%v) before its worker left rotation", err)
		case <-time.After(2 * time.Millisecond):
		}
	}
	err = <-ended
	res.killMs = float64(time.Since(start).Microseconds()) / 1e3
	time.Sleep(500 * time.Millisecond) // callers keep going on the replacement
	res.calls, res.failed = callers.stop()
	if _, ok := errors.AsType[*mlbridge.ExitError](err); !ok {
		return res, fmt.Errorf("the wedging call ended with %v, not its worker's death", err)
	}
	return res, nil
}

// callers is a load of idempotent calls that each wait 5 ms in Python.
type callers struct {
	stopCh        chan struct{}
	wg            sync.WaitGroup
	calls, failed atomic.Int64
}

func startCallers(ctx context.Context, p *mlbridge.Pool, n int) *callers {
	c := &callers{stopCh: make(chan struct{})}
	for g := range n {
		c.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-c.stopCh:
					return
				default:
				}
				want := g*1_000_000 + i
				v, err := mlbridge.Decode[int](p.Call(ctx, "sleep_echo", map[string]any{"value": want, "seconds": 0.005}, mlbridge.Idempotent()))
				c.calls.Add(1)
				if err != nil || v != want {
					c.failed.Add(1)
				}
			}
		})
	}
	return c
}

func (c *callers) stop() (calls, failed int64) {
	close(c.stopCh)
	c.wg.Wait()
	return c.calls.Load(), c.failed.Load()
}
