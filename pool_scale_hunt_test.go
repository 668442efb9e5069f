package mlbridge_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
)

// Thousands of callers queued behind a busy worker, cancelled at once: each gets a typed
// ErrCancelled, the queue empties (no entry leaks), and the pool serves afterwards.
// MinSize = MaxSize: an autoscaling configuration that cannot scale.
func TestPoolThousandsOfQueuedCallersCancelledAtOnce(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.MinSize, c.MaxSize, c.MaxInFlight, c.QueueSize = 0, 1, 1, 1, 4000
	})
	busy := make(chan error, 1)
	go func() {
		_, err := p.Call(context.Background(), "sleep", map[string]any{"seconds": 1.5})
		busy <- err
	}()
	eventually(t, "the busy call", func() bool { return p.Stats().Workers[0].InFlight == 1 })
	const callers = 2000
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			_, err := p.Call(ctx, "noop", nil)
			errs <- err
		})
	}
	eventually(t, "every caller queued", func() bool { return p.Stats().Waiting == callers })
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, mlbridge.ErrCancelled) {
			t.Fatalf("queued call cancelled: %v, want ErrCancelled", err)
		}
	}
	if st := p.Stats(); st.Waiting != 0 || st.OldestWait != 0 {
		t.Fatalf("queue after cancelling: waiting %d oldest %s", st.Waiting, st.OldestWait)
	}
	if err := <-busy; err != nil {
		t.Fatalf("busy call: %v", err)
	}
	if err := noop(p); err != nil {
		t.Fatalf("call after the cancellations: %v", err)
	}
	if w := p.Stats().Workers[0]; w.InFlight != 0 || w.Served != 2 {
		t.Fatalf("worker after: %+v, want nothing in flight and 2 served", w)
	}
}

// Queued callers whose deadlines pass while an autoscaling pool is at MaxSize: each gets a
// typed ErrTimeout and leaves the queue; in-flight counts never go negative.
func TestPoolQueuedDeadlinesWhileAtMaxSize(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.MinSize, c.MaxSize, c.MaxInFlight, c.ScaleDownIdle = 1, 1, 2, 1, 300*time.Millisecond
	})
	var busy sync.WaitGroup
	for range 2 {
		busy.Go(func() {
			if _, err := p.Call(context.Background(), "sleep", map[string]any{"seconds": 2}); err != nil {
				t.Errorf("busy call: %v", err)
			}
		})
	}
	eventually(t, "growth to MaxSize", func() bool { st := p.Stats(); return st.Ready == 2 && st.Waiting == 0 })
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			if _, err := p.Call(ctx, "noop", nil); !errors.Is(err, mlbridge.ErrTimeout) {
				t.Errorf("queued call past its deadline: %v, want ErrTimeout", err)
			}
		})
	}
	wg.Wait()
	if st := p.Stats(); st.Waiting != 0 {
		t.Fatalf("waiting after the deadlines: %d", st.Waiting)
	}
	busy.Wait()
	eventually(t, "shrink to MinSize", func() bool { st := p.Stats(); return st.Size == 1 && len(st.Workers) == 1 })
	for _, w := range p.Stats().Workers {
		if w.InFlight != 0 {
			t.Fatalf("worker after: %+v", w)
		}
	}
	if err := noop(p); err != nil {
		t.Fatal(err)
	}
}

func noop(p *mlbridge.Pool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := p.Call(ctx, "noop", nil)
	return err
}

// Callers cancelled while a busy worker keeps handing its freed slot to the queue: a waiter
// handed the worker just as its ctx ended gives the slot back without it counting as served
// (WorkerStats.Served counts calls the worker ran; MaxRequests recycles on it). Only the
// one call in flight at the cancellation may count without succeeding.
func TestPoolCancelledWaitersAreNotCountedServed(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.MaxInFlight, c.QueueSize = 1, 1, 4000
	})
	const callers = 2000
	ctx, cancel := context.WithCancel(context.Background())
	var ok sync.WaitGroup
	var mu sync.Mutex
	succeeded := 0
	for range callers {
		ok.Go(func() {
			_, err := p.Call(ctx, "sleep", map[string]any{"seconds": 0.002})
			switch {
			case err == nil:
				mu.Lock()
				succeeded++
				mu.Unlock()
			case !errors.Is(err, mlbridge.ErrCancelled):
				t.Errorf("call: %v, want success or ErrCancelled", err)
			}
		})
	}
	eventually(t, "callers queued", func() bool { return p.Stats().Waiting > callers/2 })
	time.Sleep(100 * time.Millisecond) // the worker serves the queue meanwhile
	cancel()
	ok.Wait()
	st := p.Stats()
	served := st.Workers[0].Served
	if served < uint64(succeeded) || served > uint64(succeeded)+1 || st.Waiting != 0 || st.Workers[0].InFlight != 0 {
		t.Fatalf("served %d, succeeded %d (want equal, or one more); waiting %d, in flight %d",
			served, succeeded, st.Waiting, st.Workers[0].InFlight)
	}
}

// Autoscaling under load while new workers fail to start: the breaker opens after the
// threshold instead of respawning without end, the ready worker keeps serving every queued
// call, and once its last worker is gone the calls fail fast with a typed ErrCrashLoop. When
// starts work again the pool recovers and grows.
func TestPoolAutoscaleCrashLoopUnderLoad(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "fail-start")
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.MinSize, c.MaxSize, c.MaxInFlight = 1, 1, 4, 1
		c.CrashLoopThreshold, c.CrashLoopCooldown = 3, 300*time.Millisecond
		c.Env = append(c.Env, "MLBRIDGE_ECHO_FAIL_START_IF="+marker)
	})
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	first := pids(p)[0]
	stop := callInLoops(8, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := p.Call(ctx, "sleep", map[string]any{"seconds": 0.02})
		cancel()
		if err != nil && !errors.Is(err, mlbridge.ErrCrashLoop) && !errors.Is(err, mlbridge.ErrWorkerExited) {
			t.Errorf("call: %v", err)
		}
	})
	defer stop()
	eventually(t, "the breaker to open", func() bool { return errors.Is(p.Err(), mlbridge.ErrCrashLoop) })
	crashes := p.Stats().Crashes
	if err := noop(p); err != nil {
		t.Fatalf("a call while the ready worker serves: %v", err)
	}
	time.Sleep(500 * time.Millisecond) // cooldowns double: a try or two, not a respawn storm
	if st := p.Stats(); st.Crashes > crashes+3 || st.Scaling.Target > 4 || st.Ready != 1 {
		t.Fatalf("while the breaker is open: crashes %d→%d, target %d, ready %d", crashes, st.Crashes, st.Scaling.Target, st.Ready)
	}
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "no ready worker", func() bool { return p.Stats().Ready == 0 })
	if _, err := p.Call(context.Background(), "noop", nil); !errors.Is(err, mlbridge.ErrCrashLoop) {
		t.Fatalf("call with no worker and the breaker open: %v, want ErrCrashLoop", err)
	}
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	eventually(t, "recovery and growth", func() bool {
		st := p.Stats()
		return st.Error == "" && st.Ready >= 2
	})
	for _, w := range p.Stats().Workers {
		if w.InFlight < 0 {
			t.Fatalf("negative in flight: %+v", w)
		}
	}
}

// A full queue on a grown pool fails at once with ErrOverloaded, and the error names the
// workers the pool has now (it named the starting Size), without counting the refused calls
// as waiting.
func TestPoolOverloadedAfterGrowthNamesTheCurrentSize(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.MinSize, c.MaxSize, c.MaxInFlight, c.QueueSize = 1, 1, 2, 1, 1
	})
	var busy sync.WaitGroup
	defer busy.Wait()
	for range 2 {
		busy.Go(func() {
			if _, err := p.Call(context.Background(), "sleep", map[string]any{"seconds": 1.5}); err != nil {
				t.Errorf("busy call: %v", err)
			}
		})
	}
	eventually(t, "growth to MaxSize, both busy", func() bool {
		st := p.Stats()
		return st.Ready == 2 && st.Waiting == 0 && st.Workers[0].InFlight+st.Workers[1].InFlight == 2
	})
	queued := make(chan error, 1)
	busy.Go(func() { queued <- noop(p) })
	eventually(t, "one call queued", func() bool { return p.Stats().Waiting == 1 })
	_, err := p.Call(context.Background(), "noop", nil)
	if !errors.Is(err, mlbridge.ErrOverloaded) || !strings.Contains(err.Error(), "for 2 workers") {
		t.Fatalf("call past a full queue: %v, want ErrOverloaded naming 2 workers", err)
	}
	if st := p.Stats(); st.Overloaded != 1 || st.Waiting != 1 {
		t.Fatalf("overloaded %d, waiting %d", st.Overloaded, st.Waiting)
	}
	if err := <-queued; err != nil {
		t.Fatalf("the queued call: %v", err)
	}
}

// Step loads up to MaxSize and back, twice, with recycling after few calls racing the
// scale-downs: no call fails, and every Stats snapshot taken meanwhile is consistent (the
// target within the bounds, one slot per target place, ready ≤ target, in-flight counts
// within 0 and the limit).
func TestPoolStepLoadsWithRecyclingKeepStatsConsistent(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.MinSize, c.MaxSize, c.ScaleDownIdle = 0, 1, 3, 200*time.Millisecond
		c.MaxInFlight, c.MaxRequests = 2, 25
	})
	done := make(chan struct{})
	var checker sync.WaitGroup
	checker.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			st := p.Stats()
			bad := st.Size < 1 || st.Size > 3 || st.Scaling.Target != st.Size || len(st.Slots) != st.Size ||
				st.Ready > st.Size || st.Waiting < 0
			for _, w := range st.Workers {
				bad = bad || w.InFlight < 0 || w.InFlight > 2
			}
			if bad {
				t.Errorf("inconsistent stats: size %d ready %d waiting %d slots %d scaling %+v workers %+v",
					st.Size, st.Ready, st.Waiting, len(st.Slots), st.Scaling, st.Workers)
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	for round := range 2 {
		stop := callInLoops(12, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := p.Call(ctx, "sleep", map[string]any{"seconds": 0.02})
			cancel()
			if err != nil {
				t.Errorf("round %d: call failed: %v", round, err)
			}
		})
		eventually(t, "growth to MaxSize", func() bool { st := p.Stats(); return st.Size == 3 && st.Ready == 3 })
		stop()
		eventually(t, "shrink to MinSize", func() bool { st := p.Stats(); return st.Size == 1 && st.Ready == 1 })
	}
	close(done)
	checker.Wait()
	st := p.Stats()
	if st.Recycles == 0 || st.Scaling.Downs < 2 || st.Scaling.Ups < 2 {
		t.Fatalf("recycles %d, scaling %+v: the test did not race recycling with scaling", st.Recycles, st.Scaling)
	}
	if err := noop(p); err != nil {
		t.Fatal(err)
	}
}

// While the crash-loop breaker is open, a healthy worker that reaches MaxRequests keeps
// serving: its replacement could not start, so recycling it turned a degraded pool into
// an outage (every call ErrCrashLoop). The recycle happens once the breaker closes.
func TestPoolRecycleWaitsWhileTheBreakerIsOpen(t *testing.T) {
	p, heal := poolWithOpenBreaker(t, func(c *mlbridge.PoolConfig) { c.Size, c.MaxRequests, c.MaxInFlight = 2, 4, 1 })
	for i := range 10 {
		if err := noop(p); err != nil {
			t.Fatalf("call %d with one healthy worker left: %v", i, err)
		}
	}
	if st := p.Stats(); st.Ready != 1 || st.Recycles != 0 {
		t.Fatalf("ready %d, recycles %d: the last healthy worker was recycled", st.Ready, st.Recycles)
	}
	heal()
	eventually(t, "recovery", func() bool { return p.Err() == nil && p.Stats().Ready == 2 })
	for range 2 {
		if err := noop(p); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the postponed recycle", func() bool { st := p.Stats(); return st.Recycles >= 1 && st.Ready == 2 })
}

// Close while the pool grows under a queue: every call either completes or fails with a
// typed ErrClosed, and no worker process outlives Close, including those still starting.
func TestPoolCloseDuringScaleUpFailsQueuedCallsTyped(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.MinSize, c.MaxSize, c.MaxInFlight = 1, 1, 4, 1
	})
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			_, err := p.Call(context.Background(), "sleep", map[string]any{"seconds": 0.2})
			if err != nil && !errors.Is(err, mlbridge.ErrClosed) {
				t.Errorf("call during Close: %v, want nil or ErrClosed", err)
			}
		})
	}
	eventually(t, "growth to begin", func() bool { return p.Stats().Scaling.Target >= 2 })
	var seen []int
	for _, w := range p.Stats().Workers {
		seen = append(seen, w.Pid)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	wg.Wait()
	for _, w := range p.Stats().Workers {
		seen = append(seen, w.Pid)
	}
	for _, pid := range seen {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("worker %d still runs after Close", pid)
		}
	}
	if _, err := p.Call(context.Background(), "noop", nil); !errors.Is(err, mlbridge.ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}
}

// Workers added by the autoscaler are killed as soon as they serve, twice, under a load of
// idempotent calls: no call fails (each is retried on another worker), and the pool still
// reaches MaxSize.
func TestPoolNewWorkersKilledDuringScaleUp(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.MinSize, c.MaxSize, c.MaxInFlight = 1, 1, 3, 1
	})
	stop := callInLoops(12, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := p.Call(ctx, "sleep", map[string]any{"seconds": 0.05}, mlbridge.Idempotent())
		cancel()
		if err != nil {
			t.Errorf("idempotent call while new workers die: %v", err)
		}
	})
	defer stop()
	killed := map[int]bool{}
	for len(killed) < 2 {
		var victim int
		eventually(t, "a new worker serving", func() bool {
			for _, w := range p.Stats().Workers {
				if w.Slot > 0 && w.State == "ready" && w.InFlight > 0 && !killed[w.Pid] {
					victim = w.Pid
					return true
				}
			}
			return false
		})
		killed[victim] = true
		if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "MaxSize after the kills", func() bool { st := p.Stats(); return st.Ready == 3 && st.Error == "" })
}

// Scale-down while the highest slot's worker has a long call in flight: the idle worker
// goes (slot 0), the busy one keeps its call to the end and stays.
func TestPoolScaleDownSparesTheBusyWorker(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.MinSize, c.MaxSize, c.MaxInFlight, c.ScaleDownIdle = 1, 1, 2, 1, 200*time.Millisecond
	})
	long := make(chan error, 1)
	var longPid int
	// Occupy slot 0 so that the pool grows, and the long call lands on slot 1.
	hold := make(chan error, 1)
	go func() {
		_, err := p.Call(context.Background(), "sleep", map[string]any{"seconds": 0.6})
		hold <- err
	}()
	eventually(t, "slot 0 busy", func() bool { return p.Stats().Workers[0].InFlight == 1 })
	go func() {
		_, err := p.Call(context.Background(), "sleep", map[string]any{"seconds": 3})
		long <- err
	}()
	eventually(t, "the long call on slot 1", func() bool {
		for _, w := range p.Stats().Workers {
			if w.Slot == 1 && w.InFlight == 1 {
				longPid = w.Pid
				return true
			}
		}
		return false
	})
	if err := <-hold; err != nil {
		t.Fatal(err)
	}
	eventually(t, "scale-down to MinSize", func() bool { return p.Stats().Size == 1 })
	if err := <-long; err != nil {
		t.Fatalf("the busy worker's call: %v", err)
	}
	st := p.Stats()
	if len(st.Workers) != 1 || st.Workers[0].Pid != longPid || st.Workers[0].State != "ready" {
		t.Fatalf("after scale-down: %+v, want the busy worker %d kept", st.Workers, longPid)
	}
}

// An autoscaling pool whose breaker opened while MinSize workers still serve is not healthy:
// Healthy (serve's /v1/healthz) agrees with Err, Health and Stats().Healthy, and recovers with them.
func TestPoolHealthyIsFalseWhileTheBreakerIsOpen(t *testing.T) {
	p, heal := poolWithOpenBreaker(t, func(c *mlbridge.PoolConfig) { c.Size, c.MinSize, c.MaxSize = 2, 1, 2 })
	st := p.Stats()
	if st.Ready < 1 || st.Healthy || p.Health(context.Background()) == nil || p.Healthy() {
		t.Fatalf("breaker open with %d ready: Stats healthy %v, Health %v, Healthy %v",
			st.Ready, st.Healthy, p.Health(context.Background()), p.Healthy())
	}
	if err := noop(p); err != nil {
		t.Fatalf("the ready worker still serves: %v", err)
	}
	heal()
	eventually(t, "recovery", func() bool { return p.Healthy() && p.Stats().Healthy && p.Health(context.Background()) == nil })
}

// poolWithOpenBreaker opens a pool of 2 workers (size set by mutate; a crash-loop breaker that
// opens after 2 failed starts and cools down 300 ms), makes every later start fail (the echo
// bridge's MLBRIDGE_ECHO_FAIL_START_IF marker), kills worker 1 and waits for the breaker to
// open: the other worker still serves. heal lets starts succeed again.
func poolWithOpenBreaker(t *testing.T, mutate func(*mlbridge.PoolConfig)) (p *mlbridge.Pool, heal func()) {
	t.Helper()
	marker := filepath.Join(t.TempDir(), "fail-start")
	p = openPool(t, func(c *mlbridge.PoolConfig) {
		mutate(c)
		c.CrashLoopThreshold, c.CrashLoopCooldown = 2, 300*time.Millisecond
		c.Env = append(c.Env, "MLBRIDGE_ECHO_FAIL_START_IF="+marker)
	})
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pids(p)[1], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the breaker to open", func() bool { return errors.Is(p.Err(), mlbridge.ErrCrashLoop) })
	return p, func() {
		t.Helper()
		if err := os.Remove(marker); err != nil {
			t.Fatal(err)
		}
	}
}

// callInLoops runs call from n goroutines, each again and again, until stop is called; stop
// waits for them to return (calling it again does nothing).
func callInLoops(n int, call func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				call()
			}
		})
	}
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}
