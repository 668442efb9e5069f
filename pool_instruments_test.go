package mlbridge_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/mlbridge/mlbridge"
)

// series reads every data point of a ManualReader: name{attributes} -> value (int64,
// float64, or the histogram point).
func series(t *testing.T, r sdkmetric.Reader) map[string]any {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	key := func(name string, a attribute.Set) string {
		return name + "{" + a.Encoded(attribute.DefaultEncoder()) + "}"
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					out[key(m.Name, dp.Attributes)] = dp.Value
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					out[key(m.Name, dp.Attributes)] = dp.Value
				}
			case metricdata.Gauge[float64]:
				for _, dp := range d.DataPoints {
					out[key(m.Name, dp.Attributes)] = dp.Value
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					out[key(m.Name, dp.Attributes)] = dp
				}
			}
		}
	}
	return out
}

// waitSeries collects until ok holds (worker lifecycle events land a moment after the fact).
func waitSeries(t *testing.T, r sdkmetric.Reader, what string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := series(t, r)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never true; series: %v", what, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func manualProvider() (*sdkmetric.ManualReader, *sdkmetric.MeterProvider) {
	r := sdkmetric.NewManualReader()
	return r, sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
}

func TestPoolCallDurationByOpAndOutcome(t *testing.T) {
	reader, mp := manualProvider()
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.MeterProvider, c.Name = mp, "svc" })
	ctx := context.Background()
	for range 3 {
		poolCall[any](t, p, "echo", nil)
	}
	poolCall[any](t, p, "sleep_echo", args("seconds", 0.2))
	if _, err := p.Call(ctx, "fail", nil); err == nil {
		t.Fatal("fail succeeded")
	}
	for _, op := range []string{"junk_a", "junk_b"} {
		if _, err := p.Call(ctx, op, nil); !errors.Is(err, mlbridge.ErrUnknownOp) {
			t.Fatalf("%s: %v", op, err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := p.Call(short, "sleep_echo", args("seconds", 5.0)); !errors.Is(err, mlbridge.ErrTimeout) {
		t.Fatalf("short deadline: %v", err)
	}

	got := series(t, reader)
	want := map[string]struct {
		count    uint64
		min, max float64 // seconds
	}{
		"bridge=svc,op=echo,outcome=ok":            {3, 0, 1},
		"bridge=svc,op=sleep_echo,outcome=ok":      {1, 0.19, 1}, // a 200 ms sleep: the loop's timers may fire a ms early
		"bridge=svc,op=fail,outcome=error":         {1, 0, 1},
		"bridge=svc,op=(unknown),outcome=error":    {2, 0, 1},    // undeclared ops share one series
		"bridge=svc,op=sleep_echo,outcome=timeout": {1, 0.04, 1}, // Python may end it a moment before Go
	}
	n := 0
	for k, v := range got {
		if dp, ok := v.(metricdata.HistogramDataPoint[float64]); ok {
			n++
			if !slices.Equal(dp.Bounds, mlbridge.DurationBuckets()) {
				t.Errorf("%s: bounds %v", k, dp.Bounds)
			}
		}
	}
	if n != len(want) {
		t.Errorf("%d duration series, want %d: %v", n, len(want), got)
	}
	for attrs, w := range want {
		dp, ok := got[mlbridge.MetricCallDuration+"{"+attrs+"}"].(metricdata.HistogramDataPoint[float64])
		if !ok {
			t.Errorf("no duration series {%s}", attrs)
			continue
		}
		max, _ := dp.Max.Value()
		min, _ := dp.Min.Value()
		if dp.Count != w.count || min < w.min || max > w.max {
			t.Errorf("{%s}: count %d min %v max %v, want count %d within [%v, %v] s", attrs, dp.Count, min, max, w.count, w.min, w.max)
		}
	}
}

// The JSON status's percentiles read what was measured: the 2 s call read 2097152 µs
// (the log2 bucket's upper bound). Now each is within 3.1% of the measured duration.
func TestPoolStatsPercentilesReadTheDuration(t *testing.T) {
	p := openPool(t)
	opStats := func(op string) mlbridge.OpStats {
		for _, o := range p.Stats().Ops {
			if o.Op == op {
				return o
			}
		}
		t.Fatalf("%s not in stats", op)
		return mlbridge.OpStats{}
	}
	const bound = 1.0 / 32

	// Exactly 2 s, as the pool records a finished call.
	p.RecordCall(context.Background(), "echo", time.Now().Add(-2*time.Second), nil)
	for _, q := range []float64{opStats("echo").P50us, opStats("echo").P99us} {
		if q < 2e6*(1-bound) || q > 2e6*(1+bound) {
			t.Fatalf("a 2 s call reads %v µs", q)
		}
	}

	// A real 2 s call: between 2 s and what the caller measured, within the bound.
	start := time.Now()
	poolCall[any](t, p, "lm_wait", args("seconds", 2.0))
	took := float64(time.Since(start).Microseconds())
	o := opStats("lm_wait")
	for _, q := range []float64{o.P50us, o.P90us, o.P99us} {
		if q < 2e6*(1-bound) || q > took*(1+bound) {
			t.Fatalf("percentiles of one call that took %v µs: %+v", took, o)
		}
	}
}

func TestPoolLoadMetrics(t *testing.T) {
	reader, mp := manualProvider()
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.MeterProvider, c.Name, c.Size, c.MaxInFlight = mp, "svc", 1, 1 })
	got := series(t, reader)
	for k, want := range map[string]int64{
		mlbridge.MetricWorkers + "{bridge=svc,state=ready}":         1,
		mlbridge.MetricWorkers + "{bridge=svc,state=draining}":      0,
		mlbridge.MetricWedgedWorkers + "{bridge=svc}":               0,
		mlbridge.MetricInFlight + "{bridge=svc}":                    0,
		mlbridge.MetricQueueDepth + "{bridge=svc}":                  0,
		mlbridge.MetricCallRetries + "{bridge=svc}":                 0,
		mlbridge.MetricWorkerStarts + "{bridge=svc,outcome=ok}":     1,
		mlbridge.MetricWorkerStarts + "{bridge=svc,outcome=failed}": 0,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %d", k, got[k], want)
		}
	}
	if rss, _ := got[mlbridge.MetricWorkerRSS+"{bridge=svc,slot=0}"].(int64); rss < 1<<20 {
		t.Errorf("RSS of slot 0: %v", got[mlbridge.MetricWorkerRSS+"{bridge=svc,slot=0}"])
	}

	// One call holds the only worker; two more wait behind it.
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { poolCall[any](t, p, "sleep_echo", args("seconds", 0.5)) })
	}
	got = waitSeries(t, reader, "two calls queued", func(s map[string]any) bool {
		return s[mlbridge.MetricQueueDepth+"{bridge=svc}"] == int64(2)
	})
	if got[mlbridge.MetricInFlight+"{bridge=svc}"] != int64(1) {
		t.Errorf("in flight: %v", got[mlbridge.MetricInFlight+"{bridge=svc}"])
	}
	time.Sleep(100 * time.Millisecond)
	if age, _ := series(t, reader)[mlbridge.MetricQueueOldest+"{bridge=svc}"].(float64); age < 0.1 || age > 2 {
		t.Errorf("oldest waiter's age: %v s", age)
	}
	wg.Wait()
	got = series(t, reader)
	if got[mlbridge.MetricQueueDepth+"{bridge=svc}"] != int64(0) || got[mlbridge.MetricQueueOldest+"{bridge=svc}"] != 0.0 {
		t.Errorf("queue after the calls: %v, %v", got[mlbridge.MetricQueueDepth+"{bridge=svc}"], got[mlbridge.MetricQueueOldest+"{bridge=svc}"])
	}
}

func TestPoolWorkerLifecycleMetrics(t *testing.T) {
	reader, mp := manualProvider()
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.MeterProvider, c.Name, c.MaxRequests = mp, "svc", 3 })
	exits := func(reason string) string { return mlbridge.MetricWorkerExits + "{bridge=svc,reason=" + reason + "}" }
	got := series(t, reader)
	for _, reason := range []string{"crash", "start_failure", "recycled", "shutdown"} {
		if got[exits(reason)] != int64(0) {
			t.Errorf("%s = %v, want 0 from the start", exits(reason), got[exits(reason)])
		}
	}

	// kill -9 of a worker that has served: an exit by crash (one killed before it served,
	// within startGrace of its start, is a start_failure, as the crash-loop breaker counts
	// it), and a start of its replacement.
	victim := servedWorker(t, p)
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitReplaced(t, p, victim)
	waitSeries(t, reader, "crash and restart counted", func(s map[string]any) bool {
		return s[exits("crash")] == int64(1) && s[mlbridge.MetricWorkerStarts+"{bridge=svc,outcome=ok}"] == int64(3)
	})

	// MaxRequests: each worker serves 3 calls, then is recycled.
	for range 6 {
		poolCall[any](t, p, "noop", nil)
	}
	recycles := mlbridge.MetricWorkerRecycles + "{bridge=svc,reason=max_requests}"
	got = waitSeries(t, reader, "recycles counted", func(s map[string]any) bool {
		n, _ := s[recycles].(int64)
		r, _ := s[exits("recycled")].(int64)
		return n >= 1 && r == n
	})
	if got[mlbridge.MetricWorkerRecycles+"{bridge=svc,reason=wedged}"] != int64(0) {
		t.Errorf("wedged recycles: %v", got)
	}

	// Close stops each live worker: exits by shutdown (synchronous counters outlive the pool).
	waitHealthy(t, p)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	got = series(t, reader)
	if got[exits("shutdown")] != int64(2) {
		t.Errorf("exits by shutdown: %v", got[exits("shutdown")])
	}
	if _, ok := got[mlbridge.MetricWorkers+"{bridge=svc,state=ready}"]; ok {
		t.Error("observable instruments still reported after Close")
	}
}

// servedWorker calls until some worker has served, and returns its pid.
func servedWorker(t *testing.T, p *mlbridge.Pool) int {
	t.Helper()
	for {
		poolCall[any](t, p, "noop", nil)
		for _, w := range p.Stats().Workers {
			if w.Served > 0 {
				return w.Pid
			}
		}
	}
}

// A worker whose event loop stops is counted wedged while it is, and its recycle by reason.
func TestPoolWedgedWorkerMetrics(t *testing.T) {
	reader, mp := manualProvider()
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.MeterProvider, c.Name, c.LivenessTimeout = mp, "svc", 300*time.Millisecond
	})
	done := make(chan error, 1)
	go func() { _, err := p.Call(context.Background(), "block_loop", args("seconds", 2.0)); done <- err }()
	// The gauge reads the worker's state; the counter is bumped by the pool's watcher once it
	// acts on that state: wait for both (one read could fall between them).
	waitSeries(t, reader, "wedged worker seen and its recycle counted", func(s map[string]any) bool {
		return s[mlbridge.MetricWedgedWorkers+"{bridge=svc}"] == int64(1) &&
			s[mlbridge.MetricWorkerRecycles+"{bridge=svc,reason=wedged}"] == int64(1)
	})
	if err := <-done; err != nil {
		t.Fatalf("the wedging call (under HeartbeatTimeout): %v", err)
	}
	waitSeries(t, reader, "the wedged worker recycled", func(s map[string]any) bool {
		return s[mlbridge.MetricWorkerExits+"{bridge=svc,reason=recycled}"] == int64(1) &&
			s[mlbridge.MetricWedgedWorkers+"{bridge=svc}"] == int64(0)
	})
}

// A worker that died just before Shutdown took its snapshot of the workers (killed, and seen
// dead by its handle, while its slot had not yet removed it) is counted as a crash, not as a
// shutdown; the live one is a shutdown.
func TestPoolWorkerDeadAtShutdownIsACrash(t *testing.T) {
	reader, mp := manualProvider()
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.MeterProvider, c.Name = mp, "svc" })
	exits := func(reason string) string { return mlbridge.MetricWorkerExits + "{bridge=svc,reason=" + reason + "}" }
	mlbridge.KillBeforeShutdownSnapshot(p, servedWorker(t, p))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	got := series(t, reader)
	if got[exits("crash")] != int64(1) || got[exits("shutdown")] != int64(1) || got[exits("start_failure")] != int64(0) {
		t.Errorf("exits: crash %v, shutdown %v, start_failure %v; want 1, 1, 0", got[exits("crash")], got[exits("shutdown")], got[exits("start_failure")])
	}
	if st := p.Stats(); st.Crashes != 1 {
		t.Errorf("Stats().Crashes = %d, want 1", st.Crashes)
	}
}
