package mlbridge_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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
	"github.com/mlbridge/mlbridge/store"
)

func openPool(t testing.TB, mutate ...func(*mlbridge.PoolConfig)) *mlbridge.Pool {
	t.Helper()
	cfg := mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: testenv.EchoBridge, Python: testenv.Python(t), Logger: quietLogger(t)},
		Size:   2, RestartBackoff: 10 * time.Millisecond, MaxRestartBackoff: 100 * time.Millisecond,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := mlbridge.OpenPool(ctx, cfg)
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func poolCall[T any](t testing.TB, p *mlbridge.Pool, op string, a any, opts ...mlbridge.CallOption) T {
	t.Helper()
	v, err := mlbridge.Decode[T](p.Call(context.Background(), op, a, opts...))
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return v
}

// waitHealthy waits until every slot has a ready worker again.
func waitHealthy(t testing.TB, p *mlbridge.Pool) {
	t.Helper()
	for !p.Healthy() {
		if err := p.Err(); err != nil {
			t.Fatalf("pool failed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func pids(p *mlbridge.Pool) []int {
	var out []int
	for _, w := range p.Stats().Workers {
		out = append(out, w.Pid)
	}
	return out
}

func TestPoolSpreadsLoad(t *testing.T) {
	p := openPool(t)
	seen := map[int]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pid, err := mlbridge.Decode[int](p.Call(context.Background(), "sleep_pid", args("seconds", 0.05)))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			seen[pid] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(seen) != 2 {
		t.Fatalf("20 concurrent calls ran on %d workers, want 2", len(seen))
	}
	st := p.Stats()
	if !st.Healthy || st.Ready != 2 || len(st.Ops) == 0 || st.Ops[0].Count != 20 {
		t.Fatalf("stats %+v", st)
	}
}

// TestPoolSurvivesRandomKills: concurrent callers while workers are SIGKILLed at random.
// Every call returns — a result, a typed error, or a result after one idempotent retry —
// and the pool returns to its full size.
func TestPoolSurvivesRandomKills(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.CrashLoopThreshold = 1000 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var ok, exited, other atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var opts []mlbridge.CallOption
				if g%2 == 0 {
					opts = append(opts, mlbridge.Idempotent())
				}
				v, err := mlbridge.Decode[int](p.Call(ctx, "sleep_echo", args("value", i, "seconds", 0.002), opts...))
				switch {
				case err == nil && v == i:
					ok.Add(1)
				case errors.Is(err, mlbridge.ErrWorkerExited):
					exited.Add(1)
				case errors.Is(err, mlbridge.ErrClosed), errors.Is(err, mlbridge.ErrCrashLoop):
					other.Add(1)
					return
				default:
					t.Errorf("call %d: unexpected result %v, %v", i, v, err)
					other.Add(1)
				}
			}
		}()
	}
	var killed []int
	for range 6 {
		time.Sleep(time.Duration(100+rand.IntN(150)) * time.Millisecond)
		if ps := pids(p); len(ps) > 0 {
			victim := ps[rand.IntN(len(ps))]
			if syscall.Kill(victim, syscall.SIGKILL) == nil {
				killed = append(killed, victim)
			}
		}
	}
	close(stop)
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("callers hung")
	}
	// Healthy alone can be true for a moment after the last kill, before the pool has seen
	// that worker die: wait until every killed worker has left.
	waitReplaced(t, p, killed...)
	st := p.Stats()
	t.Logf("ok %d, worker-exited %d, other %d; crashes %d, retries %d", ok.Load(), exited.Load(), other.Load(), st.Crashes, st.Retries)
	if ok.Load() == 0 || st.Crashes < 1 || other.Load() != 0 {
		t.Fatalf("ok %d crashes %d other %d", ok.Load(), st.Crashes, other.Load())
	}
	if v := poolCall[int](t, p, "add", args("a", 1, "b", 2)); v != 3 {
		t.Fatal(v)
	}
}

func TestPoolIdempotentCallRetriedOnce(t *testing.T) {
	p := openPool(t)
	for _, idempotent := range []bool{true, false} {
		waitHealthy(t, p)
		var opts []mlbridge.CallOption
		if idempotent {
			opts = append(opts, mlbridge.Idempotent())
		}
		f := p.Submit(context.Background(), "sleep_pid", args("seconds", 1.0), opts...)
		victim := 0
		for victim == 0 {
			for _, w := range p.Stats().Workers {
				if w.InFlight == 1 {
					victim = w.Pid
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // let the request reach Python
		if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		pid, err := mlbridge.Decode[int](f.Wait(context.Background()))
		if idempotent {
			if err != nil || pid == victim {
				t.Fatalf("idempotent call: pid %d (victim %d), %v", pid, victim, err)
			}
		} else if !errors.Is(err, mlbridge.ErrWorkerExited) {
			t.Fatalf("non-idempotent call must not be retried: %v", err)
		}
	}
	if st := p.Stats(); st.Retries != 1 {
		t.Fatalf("retries = %d, want 1", st.Retries)
	}
}

func TestPoolOverload(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.MaxInFlight, c.QueueSize = 1, 2, 4
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// 10x what the pool can hold (2 in flight + 4 queued).
	const n = 60
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := p.Call(ctx, "sleep", args("seconds", 30))
			errs <- err
		}()
	}
	overloaded := 0
	for overloaded < n-6 {
		err := <-errs
		if !errors.Is(err, mlbridge.ErrOverloaded) {
			t.Fatalf("while saturated: %v", err)
		}
		overloaded++
	}
	// The rejected calls came back while the admitted ones still run: rejection is fast,
	// and what the pool holds is bounded.
	st := p.Stats()
	if st.Workers[0].InFlight != 2 || st.Waiting != 4 || st.Overloaded != n-6 {
		t.Fatalf("stats while saturated: %+v", st)
	}
	cancel()
	for range 6 {
		if err := <-errs; !errors.Is(err, mlbridge.ErrCancelled) {
			t.Fatalf("admitted call after cancel: %v", err)
		}
	}
}

func TestPoolQueueWaitHonoursDeadline(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.Size, c.MaxInFlight = 1, 1 })
	busy := p.Submit(context.Background(), "sleep", args("seconds", 1.0))
	waitFor(t, func() bool { return p.Stats().Workers[0].InFlight == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := p.Call(ctx, "noop", nil); !errors.Is(err, mlbridge.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("queued call past its deadline: %v", err)
	}
	if _, err := busy.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestPoolRecyclesHungHandler(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.Size, c.HealthInterval = 1, 50*time.Millisecond })
	before := pids(p)[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	f := p.Submit(ctx, "hang", args("token", "pool-hang"))
	waitFor(t, func() bool { // the handler's thread is running (see TestHungSyncHandlerIsAbandonedAtDeadline)
		return slices.Contains(poolCall[[]string](t, p, "cancelled_tokens", nil), "started:pool-hang")
	})
	if _, err := f.Wait(context.Background()); !errors.Is(err, mlbridge.ErrTimeout) {
		t.Fatalf("hung call: %v", err)
	}
	waitFor(t, func() bool { ps := pids(p); return len(ps) == 1 && ps[0] != before && p.Healthy() })
	if st := p.Stats(); st.Recycles < 1 {
		t.Fatalf("stats %+v", st)
	}
	if !processGone(before) {
		t.Fatalf("recycled worker %d still running", before)
	}
}

func TestPoolRecyclesByRSS(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.HealthInterval, c.MaxRSS = 1, 50*time.Millisecond, 150<<20
	})
	before := pids(p)[0]
	rss := poolCall[int64](t, p, "alloc", args("mb", 200))
	if rss < 150<<20 {
		t.Fatalf("alloc left RSS at %d", rss)
	}
	waitFor(t, func() bool { ps := pids(p); return len(ps) == 1 && ps[0] != before && p.Healthy() })
	if st := p.Stats(); st.Workers[0].RSSBytes >= 150<<20 || st.Recycles < 1 {
		t.Fatalf("after recycle: %+v", st)
	}
}

func TestPoolRecyclesByMaxRequests(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.Size, c.MaxRequests = 1, 5 })
	before := pids(p)[0]
	for range 5 {
		poolCall[any](t, p, "noop", nil)
	}
	waitFor(t, func() bool { ps := pids(p); return len(ps) == 1 && ps[0] != before && p.Healthy() })
}

func TestPoolDrainsOnClose(t *testing.T) {
	p := openPool(t)
	var futures []*mlbridge.Future
	for range 6 {
		futures = append(futures, p.Submit(context.Background(), "sleep", args("seconds", 0.3)))
	}
	time.Sleep(50 * time.Millisecond)
	ps := pids(p)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range futures {
		if _, err := f.Wait(context.Background()); err != nil {
			t.Fatalf("in-flight call during Close: %v", err)
		}
	}
	if _, err := p.Call(context.Background(), "noop", nil); !errors.Is(err, mlbridge.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	for _, pid := range ps {
		if !processGone(pid) {
			t.Fatalf("worker %d survived Close", pid)
		}
	}
}

func TestPoolDefinitionsSurviveWorkerCrash(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.Size = 1 })
	ctx := context.Background()
	if _, err := p.Define(ctx, store.Definition{ID: "hello", Kind: "greeting", Spec: map[string]any{"prefix": "hello"}}); err != nil {
		t.Fatal(err)
	}
	greet := func() string {
		return poolCall[string](t, p, "greet", args("id", "hello", "name", "ada"), mlbridge.Uses("hello"))
	}
	if got := greet(); got != "hello ada" {
		t.Fatal(got)
	}
	victim := pids(p)[0]
	_ = syscall.Kill(victim, syscall.SIGKILL)
	waitReplaced(t, p, victim)
	// The new worker never saw the definition: the pool sends it first.
	if got := greet(); got != "hello ada" {
		t.Fatal(got)
	}
	// A new version reaches the worker that built the old one.
	if _, err := p.Define(ctx, store.Definition{ID: "hello", Kind: "greeting", Spec: map[string]any{"prefix": "bonjour"}}); err != nil {
		t.Fatal(err)
	}
	if got := greet(); got != "bonjour ada" {
		t.Fatal(got)
	}
	// Without Uses, a resource the worker never built is a clear not_found from Python.
	if err := p.Forget(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Call(ctx, "greet", args("id", "hello", "name", "ada")); !errors.Is(err, mlbridge.ErrNotFound) {
		t.Fatalf("forgotten resource: %v", err)
	}
	if _, err := p.Call(ctx, "greet", args("id", "hello", "name", "ada"), mlbridge.Uses("hello")); !errors.Is(err, mlbridge.ErrNotFound) {
		t.Fatalf("resource missing from the store: %v", err)
	}
}

func TestPoolGlobalConfigReachesLaterWorkers(t *testing.T) {
	p := openPool(t)
	ctx := context.Background()
	if _, err := p.Define(ctx, store.Definition{ID: "settings", Kind: "config", Global: true, Spec: map[string]any{"greeting": "hola"}}); err != nil {
		t.Fatal(err)
	}
	killed := pids(p)
	for _, pid := range killed {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	waitReplaced(t, p, killed...)
	seen := map[int]bool{}
	for len(seen) < 2 {
		var got struct {
			Pid   int    `msgpack:"pid"`
			Value string `msgpack:"value"`
		}
		got = poolCall[struct {
			Pid   int    `msgpack:"pid"`
			Value string `msgpack:"value"`
		}](t, p, "get_setting", args("name", "greeting"))
		if got.Value != "hola" {
			t.Fatalf("worker %d runs with setting %q", got.Pid, got.Value)
		}
		seen[got.Pid] = true
	}
}

func TestPoolDefinitionsSurviveHostRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "defs.db")
	ctx := context.Background()
	for run, wantPrefix := range []string{"first", "first"} {
		s, err := store.OpenBolt(path)
		if err != nil {
			t.Fatal(err)
		}
		p := openPool(t, func(c *mlbridge.PoolConfig) { c.Size, c.Store = 1, s })
		if run == 0 {
			if _, err := p.Define(ctx, store.Definition{ID: "g", Kind: "greeting", Spec: map[string]any{"prefix": "first"}}); err != nil {
				t.Fatal(err)
			}
		}
		got := poolCall[string](t, p, "greet", args("id", "g", "name", fmt.Sprint(run)), mlbridge.Uses("g"))
		if got != wantPrefix+" "+fmt.Sprint(run) {
			t.Fatalf("run %d: %q", run, got)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for !cond() {
		time.Sleep(10 * time.Millisecond)
	}
}

// waitReplaced waits until none of the given workers is in the pool and it is full again.
func waitReplaced(t testing.TB, p *mlbridge.Pool, gone ...int) {
	t.Helper()
	waitFor(t, func() bool {
		for _, pid := range pids(p) {
			if slices.Contains(gone, pid) {
				return false
			}
		}
		return p.Healthy()
	})
}

func processGone(pid int) bool {
	for range 300 {
		if !processAlive(pid) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// TestPoolPreload: workers forked from a zygote behave like any other: they serve, a killed
// one is replaced, and if the zygote itself dies its workers go with it and the pool starts
// a new zygote and new workers.
func TestPoolPreload(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.Preload = true })
	if v := poolCall[int](t, p, "add", args("a", 2, "b", 3)); v != 5 {
		t.Fatal(v)
	}
	workers := pids(p)
	zygote := parentOf(t, workers[0])
	if zygote == os.Getpid() || parentOf(t, workers[1]) != zygote {
		t.Fatalf("workers %v are not children of one zygote (parent %d)", workers, zygote)
	}
	_ = syscall.Kill(workers[0], syscall.SIGKILL)
	waitReplaced(t, p, workers[0])
	if got := parentOf(t, pids(p)[0]); got != zygote && parentOf(t, pids(p)[1]) != zygote {
		t.Fatal("replacement was not forked by the zygote")
	}

	before := pids(p)
	_ = syscall.Kill(zygote, syscall.SIGKILL)
	for _, pid := range before {
		if !processGone(pid) {
			t.Fatalf("worker %d outlived its zygote", pid)
		}
	}
	waitReplaced(t, p, before...)
	if v := poolCall[int](t, p, "add", args("a", 1, "b", 1)); v != 2 {
		t.Fatal(v)
	}
	if parentOf(t, pids(p)[0]) == zygote {
		t.Fatal("new workers still claim the dead zygote as parent")
	}
}

// parentOf reads a process's parent pid from /proc.
func parentOf(t testing.TB, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

func TestPoolUsesDeclaredCapacity(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.Bridge = 1, "mlbridge_worker.echo:SerialEchoBridge"
	})
	first := p.Submit(context.Background(), "sleep", args("seconds", 0.3))
	waitFor(t, func() bool { return p.Stats().Workers[0].InFlight == 1 })
	second := p.Submit(context.Background(), "noop", nil)
	waitFor(t, func() bool { return p.Stats().Waiting == 1 }) // capacity 1: it queues
	for _, f := range []*mlbridge.Future{first, second} {
		if _, err := f.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPoolRecyclesByAge(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.MaxAge, c.HealthInterval = 1, 300*time.Millisecond, 50*time.Millisecond
	})
	before := pids(p)[0]
	waitReplaced(t, p, before)
	if v := poolCall[int](t, p, "add", args("a", 1, "b", 2)); v != 3 {
		t.Fatal(v)
	}
}

// PoolConfig.CallTimeout is the deadline of calls whose ctx has none; a ctx deadline of its
// own wins. The timeout reaches Python (the call is cancelled there, not abandoned).
func TestPoolCallTimeout(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.Size = 1; c.CallTimeout = 100 * time.Millisecond })
	_, err := p.Call(context.Background(), "sleep", args("seconds", 30))
	if !errors.Is(err, mlbridge.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no ctx deadline: %v", err)
	}
	var streamErr error
	for _, err := range p.Stream(context.Background(), "count", args("n", 1000, "delay", 1.0)) {
		if err != nil {
			streamErr = err
			break
		}
	}
	if !errors.Is(streamErr, context.DeadlineExceeded) {
		t.Fatalf("stream (CallTimeout from its start): %v", streamErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.Call(ctx, "sleep", args("seconds", 0.3)); err != nil {
		t.Fatalf("a ctx deadline longer than CallTimeout must win: %v", err)
	}
}
