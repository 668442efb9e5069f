package mlbridge_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// TestPoolKilledServingWorkersNeverTripTheBreaker: calls that kill their worker (os._exit),
// more of them than CrashLoopThreshold within the window, on a pool with default restart
// settings. Workers that served are not failures to start: the pool never reports
// ErrCrashLoop and stays usable. (Six POST /v1/call/exit used to stop a default serve.)
func TestPoolKilledServingWorkersNeverTripTheBreaker(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.RestartBackoff, c.MaxRestartBackoff = 0, 0 // the defaults
	})
	for i := range 8 {
		waitHealthy(t, p)
		_, err := p.Call(context.Background(), "exit", args("code", 3, "message", "killed by a call"))
		if !errors.Is(err, mlbridge.ErrWorkerExited) {
			t.Fatalf("exit call %d: %v", i, err)
		}
		if err := p.Err(); err != nil {
			t.Fatalf("after %d killing calls the pool failed: %v", i+1, err)
		}
	}
	waitHealthy(t, p)
	if v := poolCall[int](t, p, "add", args("a", 2, "b", 3), mlbridge.Idempotent()); v != 5 {
		t.Fatal(v)
	}
	if st := p.Stats(); st.Crashes != 8 || st.Error != "" {
		t.Fatalf("stats: crashes %d, error %q", st.Crashes, st.Error)
	}
}

// TestPoolCrashLoopIsABreaker: workers that fail to start open the breaker (fast ErrCrashLoop
// with the cause, for idempotent calls too, and an unhealthy pool); once starting works again
// the half-open try closes it and the same pool serves.
func TestPoolCrashLoopIsABreaker(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "fail-start")
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.CrashLoopThreshold, c.CrashLoopCooldown = 1, 3, 200*time.Millisecond
		c.Env = append(c.Env, "MLBRIDGE_ECHO_FAIL_START_IF="+marker)
	})
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	victim := pids(p)[0]
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return p.Err() != nil })
	err := p.Err()
	if !errors.Is(err, mlbridge.ErrCrashLoop) || !strings.Contains(err.Error(), "exit code 9") ||
		!strings.Contains(err.Error(), "refusing to start") {
		t.Fatalf("pool error: %v", err)
	}
	if _, err := p.Call(context.Background(), "noop", nil, mlbridge.Idempotent()); !errors.Is(err, mlbridge.ErrCrashLoop) {
		t.Fatalf("call while the breaker is open: %v", err)
	}
	if p.Healthy() || p.Health(context.Background()) == nil {
		t.Fatal("a pool with an open breaker reports healthy")
	}
	// Half-open tries keep failing while the marker exists: the breaker stays open.
	waitFor(t, func() bool { return p.Stats().Crashes >= 5 })
	if !errors.Is(p.Err(), mlbridge.ErrCrashLoop) {
		t.Fatalf("breaker closed although starts still fail: %v", p.Err())
	}
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return p.Err() == nil && p.Healthy() })
	if v := poolCall[int](t, p, "add", args("a", 1, "b", 1)); v != 2 {
		t.Fatal(v)
	}
	if st := p.Stats(); st.Error != "" || !st.Healthy {
		t.Fatalf("after recovery: %+v", st)
	}
}

// TestPoolReplacesKilledWorkersAtOnce: kill -9 of a serving worker every 500 ms while 64
// callers make idempotent calls (the issue's load, shortened; `mlbridge bench --scenario
// chaos` runs it for 10 s and reports the recovery time). No call fails, the breaker never
// opens, and the pool is full again afterwards — with and without Preload.
func TestPoolReplacesKilledWorkersAtOnce(t *testing.T) {
	for _, preload := range []bool{false, true} {
		t.Run(map[bool]string{false: "spawn", true: "preload"}[preload], func(t *testing.T) {
			p := openPool(t, func(c *mlbridge.PoolConfig) {
				c.Size, c.Preload = 4, preload
				c.RestartBackoff, c.MaxRestartBackoff = 0, 0 // the defaults
			})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			stop := make(chan struct{})
			var ok, failed atomic.Int64
			var wg sync.WaitGroup
			for range 64 {
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						v, err := mlbridge.Decode[int](p.Call(ctx, "sleep_echo", args("value", i, "seconds", 0.005), mlbridge.Idempotent()))
						if err != nil || v != i {
							failed.Add(1)
							t.Errorf("idempotent call: %v, %v", v, err)
							return
						}
						ok.Add(1)
					}
				})
			}
			var killed []int
			for range 6 {
				time.Sleep(500 * time.Millisecond)
				ps := pids(p)
				victim := ps[len(killed)%len(ps)]
				if err := syscall.Kill(victim, syscall.SIGKILL); err == nil {
					killed = append(killed, victim)
				}
			}
			lastKill := time.Now()
			waitReplaced(t, p, killed...)
			t.Logf("full again %s after the last kill", time.Since(lastKill).Round(time.Millisecond))
			close(stop)
			wg.Wait()
			st := p.Stats()
			t.Logf("ok %d, failed %d, crashes %d, retries %d", ok.Load(), failed.Load(), st.Crashes, st.Retries)
			if failed.Load() != 0 || ok.Load() == 0 || p.Err() != nil {
				t.Fatalf("ok %d failed %d err %v", ok.Load(), failed.Load(), p.Err())
			}
		})
	}
}

// TestPoolWedgedWorkerLeavesRotation: a worker whose event loop stops — a C call holding the
// GIL, a blocking call inside an async def — leaves rotation when it stops answering liveness
// pings (before it is killed), is replaced, and is killed once silent past HeartbeatTimeout;
// idempotent calls meanwhile all succeed, and the wedging call fails with the reason before
// its 20 s wedge is over (the 30 s heartbeat of old let it finish).
func TestPoolWedgedWorkerLeavesRotation(t *testing.T) {
	for _, op := range []string{"wedge_gil", "block_loop"} {
		t.Run(op, func(t *testing.T) {
			p := openPool(t, func(c *mlbridge.PoolConfig) { c.HeartbeatTimeout = 5 * time.Second })
			var wedgeErr error
			ended := make(chan struct{})
			go func() {
				defer close(ended)
				_, wedgeErr = p.Call(context.Background(), op, args("seconds", 20.0))
			}()
			draining := map[int]bool{} // workers seen out of rotation while alive
			watched := make(chan struct{})
			go func() {
				defer close(watched)
				for {
					for _, w := range p.Stats().Workers {
						if w.State == "draining" {
							draining[w.Pid] = true
						}
					}
					select {
					case <-ended:
						return
					case <-time.After(10 * time.Millisecond):
					}
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := range 40 {
						v, err := mlbridge.Decode[int](p.Call(ctx, "sleep_echo", args("value", g*100+i, "seconds", 0.02), mlbridge.Idempotent()))
						if err != nil || v != g*100+i {
							t.Errorf("call during the wedge: %v, %v", v, err)
							return
						}
					}
				})
			}
			wg.Wait()
			<-watched
			var exit *mlbridge.ExitError
			if !errors.As(wedgeErr, &exit) || !strings.Contains(exit.Reason, "heartbeat") {
				t.Fatalf("wedging call: %v", wedgeErr)
			}
			if !draining[exit.Pid] {
				t.Fatalf("wedged worker %d was not taken out of rotation before its death (seen draining: %v)", exit.Pid, draining)
			}
			waitReplaced(t, p, exit.Pid)
			if !processGone(exit.Pid) {
				t.Fatalf("wedged worker %d still running", exit.Pid)
			}
		})
	}
}

// TestPoolBusyWorkerKeepsItsCall: a handler that holds the GIL for 3 s on purpose (a long
// C-level model load) is taken for a wedge — the worker leaves rotation and is replaced —
// but is not killed before HeartbeatTimeout, so its call still succeeds.
func TestPoolBusyWorkerKeepsItsCall(t *testing.T) {
	p := openPool(t)
	before := pids(p)
	v, err := mlbridge.Decode[string](p.Call(context.Background(), "wedge_gil", args("seconds", 3.0)))
	if err != nil || v != "unwedged" {
		t.Fatalf("busy call: %q, %v", v, err)
	}
	gone := func() (n int) {
		for _, pid := range before {
			if !slices.Contains(pids(p), pid) {
				n++
			}
		}
		return n
	}
	waitFor(t, func() bool { return gone() >= 1 && p.Healthy() })
	if st := p.Stats(); gone() != 1 || st.Recycles != 1 || st.Crashes != 0 {
		t.Fatalf("%d of the workers %v replaced, %d recycles, %d crashes; want the busy one recycled", gone(), before, st.Recycles, st.Crashes)
	}
}

// TestPoolBreakerFailsQueuedCallsWhenTheLastWorkerGoes: with the breaker open but one worker
// still serving, calls queue behind it; when that worker dies too, the queued calls fail with
// ErrCrashLoop at once instead of waiting for a start that cannot come.
func TestPoolBreakerFailsQueuedCallsWhenTheLastWorkerGoes(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "fail-start")
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.MaxInFlight, c.CrashLoopThreshold, c.CrashLoopCooldown = 2, 1, 1, time.Minute
		c.Env = append(c.Env, "MLBRIDGE_ECHO_FAIL_START_IF="+marker)
	})
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ps := pids(p)
	if err := syscall.Kill(ps[1], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return p.Err() != nil })
	busy := p.Submit(context.Background(), "sleep_pid", args("seconds", 30.0))
	waitFor(t, func() bool { return p.Stats().Workers[0].InFlight == 1 })
	queued := p.Submit(context.Background(), "noop", nil)
	waitFor(t, func() bool { return p.Stats().Waiting == 1 })
	if err := syscall.Kill(ps[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := busy.Wait(context.Background()); !errors.Is(err, mlbridge.ErrWorkerExited) {
		t.Fatalf("call on the killed worker: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := queued.Wait(ctx); !errors.Is(err, mlbridge.ErrCrashLoop) {
		t.Fatalf("queued call: %v", err)
	}
}

// TestOpenPoolTimeoutSaysWhy: a start cut short by OpenPool's ctx is an mlbridge error
// (ErrTimeout and the ctx's own error both match) carrying what the worker wrote to stderr.
func TestOpenPoolTimeoutSaysWhy(t *testing.T) {
	slowStart := []string{"-c", "import sys, time; print('loading weights from /models/big.bin', file=sys.stderr, flush=True); time.sleep(60)"}
	check := func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, mlbridge.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) ||
			!strings.Contains(err.Error(), "loading weights from /models/big.bin") {
			t.Fatalf("got %v", err)
		}
	}
	t.Run("pool", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
			Config: mlbridge.Config{Python: testenv.Python(t), Args: slowStart, Logger: quietLogger(t)}, Size: 2,
		})
		check(t, err)
	})
	t.Run("bridge", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_, err := mlbridge.Open(ctx, mlbridge.Config{Python: testenv.Python(t), Args: slowStart, Logger: quietLogger(t)})
		check(t, err)
	})
}

// TestPoolStatsBoundUnknownOps: junk op names are counted together, not one entry each.
func TestPoolStatsBoundUnknownOps(t *testing.T) {
	p := openPool(t)
	poolCall[any](t, p, "noop", nil)
	for i := range 300 {
		if _, err := p.Call(context.Background(), "junk_"+strings.Repeat("x", i%7)+string(rune('a'+i%26)), nil); !errors.Is(err, mlbridge.ErrUnknownOp) {
			t.Fatalf("junk op: %v", err)
		}
	}
	ops := p.Stats().Ops
	var names []string
	for _, o := range ops {
		names = append(names, o.Op)
		if o.Op == mlbridge.UnknownOp && (o.Count != 300 || o.Errors != 300) {
			t.Fatalf("unknown ops counted %+v", o)
		}
	}
	if !slices.Equal(names, []string{mlbridge.UnknownOp, "noop"}) {
		t.Fatalf("ops in stats: %v", names)
	}
}

// TestPoolMaxRSSHoldsUnderFastGrowth: a handler that grows its worker by 50 MB per call; the
// RSS any call saw stays within 1.2× MaxRSS (read as calls complete, not only every
// HealthInterval), and the pool recycles rather than failing calls.
func TestPoolMaxRSSHoldsUnderFastGrowth(t *testing.T) {
	const limit = 400 << 20
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.Size, c.MaxRSS = 1, limit })
	var peak int64
	for range 40 {
		rss := poolCall[int64](t, p, "alloc", args("mb", 50))
		peak = max(peak, rss)
	}
	st := p.Stats()
	t.Logf("peak RSS %d MiB for MaxRSS %d MiB (%.2f×), %d recycles", peak>>20, limit>>20, float64(peak)/limit, st.Recycles)
	if st.Recycles < 2 {
		t.Fatalf("recycles %d: 40×50 MB never passed MaxRSS?", st.Recycles)
	}
	if float64(peak) > 1.2*limit {
		t.Fatalf("peak RSS %d is %.2f× MaxRSS", peak, float64(peak)/limit)
	}
}

// TestPoolSurvivesItsZygoteKilled: with Preload, killing the zygote (the parent of every
// worker) takes all its workers with it at once; the pool starts a new zygote and new
// workers. An idempotent call is retried once, so one whose retry landed on a sibling dying
// in the same instant fails with ErrWorkerExited — typed, never hung — and every call after
// the replacement succeeds.
func TestPoolSurvivesItsZygoteKilled(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.Size, c.Preload = 2, true })
	before := pids(p)
	zygote := parentPid(t, before[0])
	if zygote == os.Getpid() || zygote != parentPid(t, before[1]) {
		t.Fatalf("workers %v are not children of one zygote (%d)", before, zygote)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var exited atomic.Int64
	stop := make(chan struct{})
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v, err := mlbridge.Decode[int](p.Call(ctx, "sleep_echo", args("value", g*1000+i, "seconds", 0.005), mlbridge.Idempotent()))
				if errors.Is(err, mlbridge.ErrWorkerExited) {
					exited.Add(1)
					continue
				}
				if err != nil || v != g*1000+i {
					t.Errorf("call while the zygote died: %v, %v", v, err)
					return
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	if err := syscall.Kill(zygote, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitReplaced(t, p, before...)
	close(stop)
	wg.Wait()
	if err := p.Err(); err != nil {
		t.Fatalf("pool after its zygote died: %v", err)
	}
	if z := parentPid(t, pids(p)[0]); z == zygote {
		t.Fatalf("new workers still come from the dead zygote %d", zygote)
	}
	t.Logf("%d idempotent calls failed with ErrWorkerExited as both workers died at once", exited.Load())
	for i := range 20 {
		if v := poolCall[int](t, p, "add", args("a", i, "b", 1), mlbridge.Idempotent()); v != i+1 {
			t.Fatal(v)
		}
	}
}

// parentPid reads a process's parent from /proc (Linux).
func parentPid(t *testing.T, pid int) int {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		t.Fatalf("stat of %d: %q", pid, s)
	}
	return ppid
}

// TestPoolConcurrentCloseWaitsForTheFirst: Close called from several goroutines at once (a
// deferred Close and a signal handler's) while a call runs. Each returns only once the pool
// is down: no worker process is left running after any of them returned. The later ones used
// to return nil at once, while the first was still draining.
func TestPoolConcurrentCloseWaitsForTheFirst(t *testing.T) {
	p := openPool(t)
	workers := pids(p)
	running := p.Submit(context.Background(), "sleep", args("seconds", 0.5))
	time.Sleep(100 * time.Millisecond) // the call has reached its worker
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := p.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
			for _, pid := range workers {
				if processAlive(pid) {
					t.Errorf("Close returned while worker %d still runs", pid)
				}
			}
		})
	}
	wg.Wait()
	if _, err := running.Wait(context.Background()); err != nil {
		t.Fatalf("the call running at Close: %v", err)
	}
}

// openPipes counts this process's descriptors that are pipes (Linux: /proc).
func openPipes(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "pipe:") {
			n++
		}
	}
	return n
}

// TestPreloadedPoolLeavesNoDescriptors: opening and closing a pool with Preload leaves no
// descriptor behind. The zygote's stdout and stderr pipes used to stay open in the host,
// two per zygote: every pool opened and closed (and every zygote that died and was
// replaced) cost two descriptors for good.
func TestPreloadedPoolLeavesNoDescriptors(t *testing.T) {
	openPool(t, func(c *mlbridge.PoolConfig) { c.Preload = true }).Close() // the lifeline's pipe
	before := openPipes(t)
	for i := range 3 {
		p := openPool(t, func(c *mlbridge.PoolConfig) { c.Preload = true })
		if v := poolCall[int](t, p, "echo", args("value", i)); v != i {
			t.Fatalf("echo %d: %d", i, v)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Guardians end (and their stderr pipes close) just after Close: give them a moment.
	for i := 0; openPipes(t) > before; i++ {
		if i == 300 {
			t.Fatalf("pipes open: %d before, %d after three pools", before, openPipes(t))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPreloadedWorkerKilledWhileItsZygoteIsStopped: the zygote is stopped (SIGSTOP, a frozen
// container) when one of its workers is killed mid-call. The zygote cannot report the exit;
// the call still fails with ErrWorkerExited within a few seconds, and once the zygote runs
// again the pool is whole. The call (and every call placed on that worker after it) used to
// wait forever for an exit status that only the stopped zygote could send.
func TestPreloadedWorkerKilledWhileItsZygoteIsStopped(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.Size, c.Preload = 2, true })
	victim := pids(p)[0]
	zygote := parentPid(t, victim)
	if zygote == os.Getpid() {
		t.Fatalf("worker %d is not a zygote's", victim)
	}
	if err := syscall.Kill(zygote, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(zygote, syscall.SIGCONT) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()               // the other worker's call: Close need not drain it
	calls := []*mlbridge.Future{ // one each: the dispatch spreads them over both workers
		p.Submit(ctx, "sleep_pid", args("seconds", 30.0)),
		p.Submit(ctx, "sleep_pid", args("seconds", 30.0)),
	}
	time.Sleep(200 * time.Millisecond) // both reached their workers
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, len(calls))
	t0 := time.Now()
	for _, f := range calls {
		go func() {
			if _, err := f.Wait(context.Background()); err != nil {
				failed <- err
			}
		}()
	}
	select {
	case err := <-failed:
		if !errors.Is(err, mlbridge.ErrWorkerExited) {
			t.Fatalf("the killed worker's call: %v", err)
		}
		t.Logf("the call failed %s after the kill: %v", time.Since(t0).Round(time.Millisecond), err)
	case <-time.After(20 * time.Second):
		t.Fatal("the killed worker's call still waits 20 s later")
	}
	if err := syscall.Kill(zygote, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitReplaced(t, p, victim)
}
