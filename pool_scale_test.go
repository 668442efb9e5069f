package mlbridge_test

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
)

// A step load grows a pool from MinSize to MaxSize and, once the load stops, the idle
// workers are stopped until MinSize remains; no call fails meanwhile. Each scale event shows in
// the stats, the metrics and the log (one "mlbridge: pool scaled" record each). The times are logged
// (docs/BENCHMARKS.md, Autoscaling); growth must take under 5 s, the requirement.
func TestPoolAutoscalesOnAStepLoad(t *testing.T) {
	for _, preload := range []bool{true, false} {
		name := "spawn"
		if preload {
			name = "preload"
		}
		t.Run(name, func(t *testing.T) { autoscaleStep(t, preload) })
	}
}

func autoscaleStep(t *testing.T, preload bool) {
	reader, mp := manualProvider()
	logs := &logCapture{}
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.MinSize, c.MaxSize, c.ScaleDownIdle = 0, 1, 4, 500*time.Millisecond
		c.MaxInFlight = 4 // 32 callers overflow one worker, and four
		c.Preload, c.MeterProvider, c.Name, c.Logger = preload, mp, "svc", slog.New(logs)
		if preload {
			c.MaxRequests = 60 // recycling while scaling: a recycled worker is replaced in its slot
		}
	})
	if st := p.Stats(); st.Size != 1 || len(st.Slots) != 1 || !st.Scaling.Enabled || st.Scaling.Target != 1 {
		t.Fatalf("start: size %d slots %d scaling %+v", st.Size, len(st.Slots), st.Scaling)
	}

	const callers = 32
	var calls, failed atomic.Int64
	start := time.Now()
	stop := callInLoops(callers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := p.Call(ctx, "sleep", map[string]any{"seconds": 0.075})
		cancel()
		calls.Add(1)
		if err != nil {
			failed.Add(1)
			t.Errorf("call failed while scaling: %v", err)
		}
	})
	var grow time.Duration
	for {
		st := p.Stats()
		if st.Scaling.Target == 4 && st.Ready == 4 {
			grow = time.Since(start)
			break
		}
		if time.Since(start) > time.Minute {
			stop()
			t.Fatalf("never reached MaxSize: %+v ready %d", st.Scaling, st.Ready)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("grew 1 -> 4 workers in %s under %d callers (requirement: within 5s; margin %s)", grow.Round(time.Millisecond), callers, (5*time.Second - grow).Round(time.Millisecond))
	if grow > 5*time.Second {
		t.Errorf("growth took %s, over 5s", grow)
	}
	time.Sleep(time.Second) // the pool stays at its maximum while the load lasts
	if st := p.Stats(); st.Scaling.Target != 4 || st.Scaling.Downs != 0 {
		t.Errorf("under load: %+v", st.Scaling)
	}
	stop()
	stopped := time.Now()

	var shrink time.Duration
	for {
		st := p.Stats()
		if st.Size == 1 && len(st.Workers) == 1 && len(st.Slots) == 1 && st.Ready == 1 {
			shrink = time.Since(stopped)
			break
		}
		if time.Since(stopped) > time.Minute {
			t.Fatalf("never shrank to MinSize: %+v workers %d", st.Scaling, len(st.Workers))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("shrank 4 -> 1 worker %s after the load stopped (ScaleDownIdle 500ms); %d calls, %d failed", shrink.Round(time.Millisecond), calls.Load(), failed.Load())

	st := p.Stats()
	if st.Scaling.Ups == 0 || st.Scaling.Downs == 0 || st.Scaling.Last == nil || st.Scaling.Last.Direction != "down" || st.Scaling.Last.To != 1 {
		t.Errorf("scaling stats: %+v last %+v", st.Scaling, st.Scaling.Last)
	}
	if !p.Healthy() || !st.Healthy {
		t.Errorf("not healthy at MinSize: %+v", st)
	}
	got := waitSeries(t, reader, "scale events and exits", func(s map[string]any) bool {
		return s[mlbridge.MetricWorkerExits+"{bridge=svc,reason=scaled_down}"] == int64(3)
	})
	up, _ := got[mlbridge.MetricScaleEvents+"{bridge=svc,direction=up}"].(int64)
	down, _ := got[mlbridge.MetricScaleEvents+"{bridge=svc,direction=down}"].(int64)
	if up != int64(st.Scaling.Ups) || down != int64(st.Scaling.Downs) || up == 0 || down == 0 {
		t.Errorf("scale events: up %d down %d, stats %+v", up, down, st.Scaling)
	}
	if got[mlbridge.MetricScaleTarget+"{bridge=svc}"] != int64(1) || got[mlbridge.MetricWorkers+"{bridge=svc,state=ready}"] != int64(1) {
		t.Errorf("target %v, ready workers %v", got[mlbridge.MetricScaleTarget+"{bridge=svc}"], got[mlbridge.MetricWorkers+"{bridge=svc,state=ready}"])
	}
	t.Logf("scale events: %d up, %d down; last %+v; recycles %d", up, down, *st.Scaling.Last, st.Recycles)
	checkScaleLogs(t, logs, st.Scaling)
	if preload && st.Recycles == 0 {
		t.Errorf("no recycle with MaxRequests 60 after %d calls", calls.Load())
	}
}

// checkScaleLogs: every scale event in the stats has its "mlbridge: pool scaled" record, with
// its direction, sizes and reason, and the last record is the stats' last event.
func checkScaleLogs(t *testing.T, logs *logCapture, sc mlbridge.ScalingStats) {
	t.Helper()
	logs.mu.Lock()
	var recs []map[string]string
	for _, r := range logs.recs {
		if r["msg"] == "mlbridge: pool scaled" {
			recs = append(recs, r)
		}
	}
	logs.mu.Unlock()
	var ups, downs uint64
	for _, r := range recs {
		from, ferr := strconv.Atoi(r["from"])
		to, terr := strconv.Atoi(r["to"])
		if ferr != nil || terr != nil || r["reason"] == "" || r["waiting"] == "" || r["oldest_wait"] == "" {
			t.Errorf("scale record without its sizes, reason or load: %v", r)
			continue
		}
		switch r["direction"] {
		case "up":
			ups++
			if to <= from || to > sc.Max {
				t.Errorf("scale-up record from %d to %d (max %d): %v", from, to, sc.Max, r)
			}
		case "down":
			downs++
			if to >= from || to < sc.Min || !strings.Contains(r["reason"], "idle") {
				t.Errorf("scale-down record from %d to %d (min %d): %v", from, to, sc.Min, r)
			}
		default:
			t.Errorf("scale record with direction %q: %v", r["direction"], r)
		}
	}
	if ups != sc.Ups || downs != sc.Downs {
		t.Errorf("logged %d ups and %d downs, stats count %d and %d", ups, downs, sc.Ups, sc.Downs)
	}
	if len(recs) == 0 {
		t.Fatal("no scale event logged")
	}
	last := recs[len(recs)-1]
	if last["direction"] != sc.Last.Direction || last["to"] != strconv.Itoa(sc.Last.To) || last["reason"] != sc.Last.Reason {
		t.Errorf("last scale record %v, stats' last event %+v", last, *sc.Last)
	}
	t.Logf("scale log records: %d up, %d down; first %v; last %v", ups, downs, recs[0], last)
}

// Close while the pool is growing stops every slot, added ones included.
func TestPoolAutoscaleCloseWhileGrowing(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.MinSize, c.MaxSize, c.Size, c.MaxInFlight = 1, 4, 1, 1
	})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() { _, _ = p.Call(context.Background(), "sleep", map[string]any{"seconds": 0.3}) })
	}
	for p.Stats().Scaling.Target < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	wg.Wait()
	for _, w := range p.Stats().Workers { // Stats lists what was in service, as for a fixed pool
		if w.State != "exited" {
			t.Errorf("a worker still runs after Shutdown: %+v", w)
		}
	}
}

// While new workers fail to start (and the crash-loop breaker opens) the pool does not grow
// past the slot it is trying to fill; once starts succeed again, growth resumes to MaxSize.
// Fake workers: no Python.
func TestFakePoolAutoscaleHoldsWhileStartsFail(t *testing.T) {
	var fail atomic.Bool
	l := failingWhile(&fail)
	cfg := fakePoolConfig(l, 0)
	cfg.MinSize, cfg.MaxSize, cfg.MaxInFlight = 1, 4, 1
	p := openFake(t, cfg)
	fail.Store(true)

	stop := callInLoops(8, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, err := p.Call(ctx, "sleep", map[string]any{"ms": 50}); err != nil {
			t.Errorf("call: %v", err) // the one ready worker keeps serving the queue
		}
		cancel()
	})
	defer stop()
	eventually(t, "the breaker to open", func() bool { return p.Stats().Error != "" })
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if st := p.Stats(); st.Scaling.Target > 2 {
			t.Fatalf("grew while starts fail: %+v (error %q)", st.Scaling, st.Error)
		}
		time.Sleep(10 * time.Millisecond)
	}
	fail.Store(false)
	eventually(t, "growth to MaxSize after the breaker closed", func() bool {
		st := p.Stats()
		return st.Error == "" && st.Scaling.Target == 4 && st.Ready == 4
	})
}

// TestPoolShrinksUnderLightSteadyLoad: a pool grown by a step load shrinks back to MinSize
// while a light load goes on (one caller, a call every 20 ms). Dispatch packs calls onto the
// lowest-index idle worker when the pool autoscales: spreading them in turn over every worker
// kept each one serving, so none was ever idle for ScaleDownIdle and the pool stayed grown.
func TestPoolShrinksUnderLightSteadyLoad(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) {
		c.Size, c.MinSize, c.MaxSize, c.ScaleDownIdle = 0, 1, 3, 500*time.Millisecond
		c.MaxInFlight = 2 // 16 callers overflow one worker
	})
	var failed atomic.Int64
	load := func(callers int, pause time.Duration, stop <-chan struct{}) *sync.WaitGroup {
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(pause):
					}
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					_, err := p.Call(ctx, "sleep", map[string]any{"seconds": 0.05})
					cancel()
					if err != nil {
						failed.Add(1)
						t.Errorf("call failed while scaling: %v", err)
					}
				}
			})
		}
		return &wg
	}
	step := make(chan struct{})
	wg := load(16, 0, step)
	start := time.Now()
	waitFor(t, func() bool { st := p.Stats(); return st.Scaling.Target == 3 && st.Ready == 3 })
	t.Logf("step load: grew 1 -> 3 workers in %s", time.Since(start).Round(time.Millisecond))
	close(step)
	wg.Wait()

	light := make(chan struct{})
	wg = load(1, 20*time.Millisecond, light)
	defer func() { close(light); wg.Wait() }()
	start = time.Now()
	for {
		st := p.Stats()
		if st.Size == 1 && len(st.Workers) == 1 && st.Ready == 1 {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("still %d slots after %s of light load (ScaleDownIdle 500ms): %+v", st.Size, time.Since(start).Round(time.Millisecond), st.Scaling)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("light load (1 caller, a 50 ms call every 20 ms): shrank 3 -> 1 worker in %s", time.Since(start).Round(time.Millisecond))
	time.Sleep(time.Second) // and stays there while the light load goes on
	if st := p.Stats(); st.Size != 1 || st.Scaling.Target != 1 || failed.Load() != 0 {
		t.Fatalf("after shrinking: size %d, %+v, %d calls failed", st.Size, st.Scaling, failed.Load())
	}
}
