package mlbridge_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// The batching tests run BatchEchoBridge (python/mlbridge_worker/batch_echo.py): its batched
// op double answers {"x": n} with {"y": 2n, "batch": <size of the batch it came in>}; an item
// {"fail": true} fails alone; {"sleep": s} holds its whole batch s seconds. Declared: max size
// 8, max wait 20 ms.

const batchBridge = "mlbridge_worker.batch_echo:BatchEchoBridge"

type doubled struct {
	Y     int `msgpack:"y"`
	Batch int `msgpack:"batch"`
	Pid   int `msgpack:"pid"`
}

func openBatchPool(t *testing.T, mutate ...func(*mlbridge.PoolConfig)) *mlbridge.Pool {
	t.Helper()
	return openPool(t, append([]func(*mlbridge.PoolConfig){func(c *mlbridge.PoolConfig) {
		c.Bridge = batchBridge
	}}, mutate...)...)
}

// withPolicy overrides the bridge's declaration of double.
func withPolicy(pol mlbridge.BatchPolicy) func(*mlbridge.PoolConfig) {
	return func(c *mlbridge.PoolConfig) { c.Batching = map[string]mlbridge.BatchPolicy{"double": pol} }
}

// callAll calls op from n goroutines at once, caller i with x = i (plus extra[i]).
func callAll(ctxs []context.Context, p *mlbridge.Pool, op string, extra map[int]map[string]any) ([]doubled, []error) {
	n := len(ctxs)
	out, errs := make([]doubled, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := map[string]any{"x": i}
			for k, v := range extra[i] {
				a[k] = v
			}
			out[i], errs[i] = mlbridge.Decode[doubled](p.Call(ctxs[i], op, a))
		}()
	}
	wg.Wait()
	return out, errs
}

func background(n int) []context.Context {
	ctxs := make([]context.Context, n)
	for i := range ctxs {
		ctxs[i] = context.Background()
	}
	return ctxs
}

// TestBatchEachCallerGetsItsOwnResult: 64 callers with distinct inputs, through batches that
// really formed (some larger than one), none larger than the declared 8, and each caller gets
// the answer to its own input; the async handler too.
func TestBatchEachCallerGetsItsOwnResult(t *testing.T) {
	p := openBatchPool(t)
	for _, op := range []string{"double", "adouble"} {
		out, errs := callAll(background(64), p, op, nil)
		largest := 0
		for i := range out {
			if errs[i] != nil {
				t.Fatalf("%s caller %d: %v", op, i, errs[i])
			}
			if out[i].Y != 2*i {
				t.Fatalf("%s caller %d (x=%d) got y=%d", op, i, i, out[i].Y)
			}
			if out[i].Batch < 1 || out[i].Batch > 8 {
				t.Fatalf("%s caller %d came in a batch of %d (max 8)", op, i, out[i].Batch)
			}
			largest = max(largest, out[i].Batch)
		}
		if largest < 2 {
			t.Fatalf("%s: 64 concurrent callers never shared a batch", op)
		}
		t.Logf("%s: largest batch %d", op, largest)
	}
	st := p.Stats().Batching["double"]
	if st.Batches == 0 || st.Calls != 64 || st.Largest > 8 {
		t.Fatalf("batching stats: %+v", st)
	}
}

// TestBatchFullBatchGoesAtOnce: with a max wait of a minute, 8 calls (the max size) still
// leave at once, together.
func TestBatchFullBatchGoesAtOnce(t *testing.T) {
	p := openBatchPool(t, withPolicy(mlbridge.BatchPolicy{MaxWait: time.Minute}))
	ctxs := make([]context.Context, 8)
	for i := range ctxs {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ctxs[i] = ctx
	}
	out, errs := callAll(ctxs, p, "double", nil)
	for i := range out {
		if errs[i] != nil || out[i].Y != 2*i || out[i].Batch != 8 {
			t.Fatalf("caller %d: %+v, %v", i, out[i], errs[i])
		}
	}
}

// TestBatchMaxSizeOverride: a pool's smaller MaxSize bounds every batch.
func TestBatchMaxSizeOverride(t *testing.T) {
	p := openBatchPool(t, withPolicy(mlbridge.BatchPolicy{MaxSize: 3}))
	out, errs := callAll(background(40), p, "double", nil)
	for i := range out {
		if errs[i] != nil || out[i].Y != 2*i || out[i].Batch > 3 {
			t.Fatalf("caller %d: %+v, %v", i, out[i], errs[i])
		}
	}
	if l := p.Stats().Batching["double"].Largest; l > 3 || l < 1 {
		t.Fatalf("largest batch %d with MaxSize 3", l)
	}
}

// TestBatchOff: Off serves the op call by call (each a batch of one on the worker).
func TestBatchOff(t *testing.T) {
	p := openBatchPool(t, withPolicy(mlbridge.BatchPolicy{Off: true}))
	out, errs := callAll(background(16), p, "double", nil)
	for i := range out {
		if errs[i] != nil || out[i].Y != 2*i || out[i].Batch != 1 {
			t.Fatalf("caller %d: %+v, %v", i, out[i], errs[i])
		}
	}
	if _, on := p.Stats().Batching["double"]; on {
		t.Fatal("an op with batching off reports batches")
	}
}

// TestBatchItemFailsAlone: one caller's bad item fails that caller with a typed error; the
// others in the same batch get their results.
func TestBatchItemFailsAlone(t *testing.T) {
	p := openBatchPool(t, withPolicy(mlbridge.BatchPolicy{MaxWait: 300 * time.Millisecond}))
	out, errs := callAll(background(4), p, "double", map[int]map[string]any{2: {"fail": true}})
	for i := range out {
		if i == 2 {
			var re *mlbridge.RemoteError
			if !errors.Is(errs[i], mlbridge.ErrInvalidArgument) || !errors.As(errs[i], &re) || re.Op != "double" {
				t.Fatalf("failing caller: %v", errs[i])
			}
			continue
		}
		if errs[i] != nil || out[i].Y != 2*i || out[i].Batch != 4 {
			t.Fatalf("caller %d: %+v, %v (want its result, from one batch of 4)", i, out[i], errs[i])
		}
	}
}

// TestBatchCancelInFormingBatch: a caller cancelled, or past its deadline, while its batch is
// still forming leaves it: it returns its ctx error at once and the batch goes without it.
func TestBatchCancelInFormingBatch(t *testing.T) {
	p := openBatchPool(t, withPolicy(mlbridge.BatchPolicy{MaxWait: 500 * time.Millisecond}))
	cancelled, cancel := context.WithCancel(context.Background())
	timed, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	time.AfterFunc(50*time.Millisecond, cancel)
	ctxs := []context.Context{context.Background(), cancelled, context.Background(), timed}
	start := time.Now()
	out, errs := callAll(ctxs, p, "double", nil)
	if !errors.Is(errs[1], mlbridge.ErrCancelled) || !errors.Is(errs[1], context.Canceled) {
		t.Fatalf("cancelled caller: %v", errs[1])
	}
	if !errors.Is(errs[3], mlbridge.ErrTimeout) || !errors.Is(errs[3], context.DeadlineExceeded) {
		t.Fatalf("timed-out caller: %v", errs[3])
	}
	for _, i := range []int{0, 2} {
		if errs[i] != nil || out[i].Y != 2*i || out[i].Batch != 2 {
			t.Fatalf("caller %d: %+v, %v (want a batch of the 2 that stayed)", i, out[i], errs[i])
		}
	}
	t.Logf("batch of 2 answered after %s", time.Since(start).Round(time.Millisecond))
}

// TestBatchCancelAfterSend: a caller that gives up after its batch left returns its ctx error
// at once, before the batch is answered; the others in the batch still get their results.
func TestBatchCancelAfterSend(t *testing.T) {
	p := openBatchPool(t, withPolicy(mlbridge.BatchPolicy{MaxWait: 200 * time.Millisecond}))
	ctx, cancel := context.WithCancel(context.Background())
	type done struct {
		i   int
		v   doubled
		err error
	}
	order := make(chan done, 3)
	for i, c := range []context.Context{context.Background(), ctx, context.Background()} {
		a := map[string]any{"x": i}
		if i == 0 {
			a["sleep"] = 0.5 // the batch is held 500 ms on the worker
		}
		go func() {
			v, err := mlbridge.Decode[doubled](p.Call(c, "double", a))
			order <- done{i, v, err}
		}()
	}
	waitFor(t, func() bool { return p.Stats().Batching["double"].Calls == 3 }) // all three sent
	cancel()
	first := <-order
	if first.i != 1 || !errors.Is(first.err, mlbridge.ErrCancelled) {
		t.Fatalf("first to return: caller %d with %v (want the cancelled caller 1, at once)", first.i, first.err)
	}
	for range 2 {
		d := <-order
		if d.err != nil || d.v.Y != 2*d.i || d.v.Batch != 3 {
			t.Fatalf("caller %d: %+v, %v (want its result from the batch of 3)", d.i, d.v, d.err)
		}
	}
}

// TestBatchWorkerKilledInFlight: a worker killed with a batch in flight fails every caller of
// that batch with ErrWorkerExited, and the pool serves batches again.
func TestBatchWorkerKilledInFlight(t *testing.T) {
	p := openBatchPool(t, func(c *mlbridge.PoolConfig) { c.Size = 1 },
		withPolicy(mlbridge.BatchPolicy{MaxWait: 50 * time.Millisecond}))
	victim := pids(p)[0]
	go func() { // once all five calls are on the worker, in one batch or more
		waitFor(t, func() bool { return p.Stats().Batching["double"].Calls == 5 })
		_ = syscall.Kill(victim, syscall.SIGKILL)
	}()
	hold := map[string]any{"sleep": 30.0}
	_, errs := callAll(background(5), p, "double", map[int]map[string]any{0: hold, 1: hold, 2: hold, 3: hold, 4: hold})
	for i, err := range errs {
		if !errors.Is(err, mlbridge.ErrWorkerExited) {
			t.Fatalf("caller %d of the killed batch: %v", i, err)
		}
	}
	waitHealthy(t, p)
	out, errs := callAll(background(6), p, "double", nil)
	for i := range out {
		if errs[i] != nil || out[i].Y != 2*i || out[i].Pid == victim {
			t.Fatalf("after the kill, caller %d: %+v, %v", i, out[i], errs[i])
		}
	}
}

// TestBatchBadArgumentsFailOnlyTheirCaller: arguments that cannot be encoded fail their caller
// before it joins a batch.
func TestBatchBadArgumentsFailOnlyTheirCaller(t *testing.T) {
	p := openBatchPool(t)
	if _, err := p.Call(context.Background(), "double", []int{1, 2}); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("arguments that are not a map: %v", err)
	}
	if v := poolCall[doubled](t, p, "double", map[string]any{"x": 4}); v.Y != 8 {
		t.Fatalf("next call: %+v", v)
	}
}

// TestBatchPolicyNegativeIsAConfigError: a negative MaxSize or MaxWait is refused by OpenPool.
func TestBatchPolicyNegativeIsAConfigError(t *testing.T) {
	for _, pol := range []mlbridge.BatchPolicy{{MaxSize: -1}, {MaxWait: -time.Millisecond}} {
		_, err := mlbridge.OpenPool(context.Background(), mlbridge.PoolConfig{
			Config:   mlbridge.Config{Bridge: batchBridge},
			Batching: map[string]mlbridge.BatchPolicy{"double": pol},
		})
		if !errors.Is(err, mlbridge.ErrInvalidConfiguration) {
			t.Fatalf("%+v: %v", pol, err)
		}
	}
}

// TestBatchBadDeclarationFailsTheStart: a bridge whose batched op is declared with max_size 0
// cannot be constructed: the pool does not open, and the error says why.
func TestBatchBadDeclarationFailsTheStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: "mlbridge_worker.batch_echo:BadBatchBridge", Python: testenv.Python(t), Logger: quietLogger(t)},
		Size:   1, CrashLoopThreshold: 1,
	})
	if !errors.Is(err, mlbridge.ErrInvalidConfiguration) || !strings.Contains(err.Error(), "max_size must be an integer >= 1") {
		t.Fatalf("open: %v", err)
	}
}

// TestBatchAnswerTooBigFailsOnlyItsItem: three 40 kB results cannot share a 100 kB frame; the
// item that does not fit fails alone with ErrSerialization, the others of its batch get their
// results.
func TestBatchAnswerTooBigFailsOnlyItsItem(t *testing.T) {
	p := openBatchPool(t, func(c *mlbridge.PoolConfig) { c.MaxFrame = 100_000 },
		withPolicy(mlbridge.BatchPolicy{MaxWait: 300 * time.Millisecond}))
	pad := map[string]any{"pad": 40_000}
	out, errs := callAll(background(4), p, "double", map[int]map[string]any{0: pad, 1: pad, 2: pad})
	failed := 0
	for i := range out {
		if errs[i] != nil {
			if i == 3 || !errors.Is(errs[i], mlbridge.ErrSerialization) || !strings.Contains(errs[i].Error(), "max_size") {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			failed++
			continue
		}
		if out[i].Y != 2*i || out[i].Batch != 4 {
			t.Fatalf("caller %d: %+v (want its result from one batch of 4)", i, out[i])
		}
	}
	if failed != 1 {
		t.Fatalf("%d callers failed; want the one result that did not fit", failed)
	}
}

// TestBatchCloseFailsQueuedCalls: calls waiting for their batch when the pool closes fail at
// once with ErrClosed, as calls waiting for a worker do. They waited out their max wait first
// (here an hour) and only then saw the pool closed.
func TestBatchCloseFailsQueuedCalls(t *testing.T) {
	p := openBatchPool(t, withPolicy(mlbridge.BatchPolicy{MaxWait: time.Hour}))
	queued := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, err := p.Call(context.Background(), "double", map[string]any{"x": i})
			queued <- err
		}()
	}
	for deadline := time.Now().Add(30 * time.Second); p.Stats().Batching["double"].Queued < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the 2 calls were not queued within 30 s: %+v", p.Stats().Batching["double"])
		}
	}
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case err := <-queued:
			if !errors.Is(err, mlbridge.ErrClosed) {
				t.Fatalf("a queued call: %v, want ErrClosed", err)
			}
		case <-time.After(30 * time.Second): // a bound on a hang, far below the max wait
			t.Fatalf("a queued call still waits %s after Close", time.Since(start).Round(time.Millisecond))
		}
	}
}
