package mlbridge_test

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/store"
)

// waitStats polls Stats until ok holds; the handler figures come from health checks, which
// run every HealthInterval. The deadline is a hang guard, not a timing assertion.
func waitStats(t *testing.T, p *mlbridge.Pool, what string, ok func(mlbridge.PoolStats) bool) mlbridge.PoolStats {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := p.Stats()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never true; last stats: by_mode=%v by_api=%v handlers=%+v", what, st.ByMode, st.ByAPI, st.Handlers)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func kindCalls(st mlbridge.PoolStats) (total uint64) {
	for _, c := range st.Handlers.Kinds {
		total += c.Calls
	}
	return total
}

func TestPoolCountsCallsPerModeAndAPI(t *testing.T) {
	p := openPool(t)
	ctx := context.Background()
	for range 3 {
		poolCall[any](t, p, "echo", map[string]any{"value": 1})
	}
	if _, err := p.Call(ctx, "fail", nil); err == nil {
		t.Fatal("fail succeeded")
	}
	for range 2 {
		if _, err := p.Submit(ctx, "echo", map[string]any{"value": 2}).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, err := range p.Stream(ctx, "count", map[string]any{"n": 3}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	legacy := mlbridge.WithAPI(ctx, "adapters.PythonPoolV2")
	for range 2 {
		if _, err := p.Call(legacy, "echo", nil); err != nil {
			t.Fatal(err)
		}
	}

	st := p.Stats()
	want := map[mlbridge.CallMode]mlbridge.CallCounts{
		mlbridge.ModeCall: {Calls: 6, Errors: 1}, mlbridge.ModeSubmit: {Calls: 2}, mlbridge.ModeStream: {Calls: 1},
	}
	for mode, c := range want {
		if st.ByMode[mode] != c {
			t.Errorf("mode %s: %+v, want %+v", mode, st.ByMode[mode], c)
		}
	}
	if got := st.ByAPI["adapters.PythonPoolV2"]; got != (mlbridge.CallCounts{Calls: 2}) {
		t.Errorf("legacy API: %+v", got)
	}
	if got := st.ByAPI[mlbridge.APICurrent]; got != (mlbridge.CallCounts{Calls: 7, Errors: 1}) {
		t.Errorf("current API: %+v", got)
	}
}

func TestPoolHandlerMigrationMetrics(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.HealthInterval = 50 * time.Millisecond })
	ctx := context.Background()

	// From the start (each worker's first health check): the modes, without the plumbing.
	st := p.Stats()
	if st.Handlers.Modes["lm_wait"] != mlbridge.KindSync || st.Handlers.Modes["echo"] != mlbridge.KindAsync {
		t.Fatalf("modes: %v", st.Handlers.Modes)
	}
	if _, ok := st.Handlers.Modes["health_check"]; ok {
		t.Fatal("plumbing op counted among the bridge's handlers")
	}
	ops := float64(len(st.Handlers.Modes))
	before := st.Handlers.AsyncShare

	// Calls per kind, as the workers served them.
	wait := map[string]any{"seconds": 0.0}
	for range 4 {
		poolCall[any](t, p, "lm_wait", wait)
	}
	poolCall[any](t, p, "echo", nil)
	st = waitStats(t, p, "5 calls counted", func(s mlbridge.PoolStats) bool { return kindCalls(s) == 5 })
	if st.Handlers.Kinds[mlbridge.KindSync] != (mlbridge.CallCounts{Calls: 4}) {
		t.Fatalf("sync: %+v", st.Handlers.Kinds)
	}

	// set_handler_mode is a call: it reaches one worker of two, and the op is "mixed".
	if _, err := p.Call(ctx, "set_handler_mode", map[string]any{"op": "lm_wait", "mode": "async"}); err != nil {
		t.Fatal(err)
	}
	st = waitStats(t, p, "lm_wait mixed", func(s mlbridge.PoolStats) bool { return s.Handlers.Modes["lm_wait"] == mlbridge.KindMixed })
	if got, want := st.Handlers.AsyncShare, before+0.5/ops; !near(got, want) {
		t.Errorf("async share with one worker of two switched: %v, want %v", got, want)
	}

	// The bridge option reaches every worker, later ones too.
	if _, err := p.Define(ctx, store.Definition{ID: "bridge_options", Kind: "options", Global: true,
		Spec: map[string]any{"handler_modes": map[string]any{"lm_wait": "async"}}}); err != nil {
		t.Fatal(err)
	}
	st = waitStats(t, p, "lm_wait async", func(s mlbridge.PoolStats) bool { return s.Handlers.Modes["lm_wait"] == mlbridge.KindAsync })
	if got, want := st.Handlers.AsyncShare, before+1/ops; !near(got, want) {
		t.Errorf("async share after the switch: %v, want %v", got, want)
	}
	for range 3 {
		poolCall[any](t, p, "lm_wait", wait)
	}
	st = waitStats(t, p, "8 calls counted", func(s mlbridge.PoolStats) bool { return kindCalls(s) == 8 })
	if got := st.Handlers.Kinds[mlbridge.KindAsync]; got.Calls != 4 { // echo + 3 lm_wait
		t.Fatalf("async: %+v", st.Handlers.Kinds)
	}

	// A worker that dies keeps its counts (as of its last health check).
	victim := st.Workers[0].Pid
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st = waitStats(t, p, "worker replaced", func(s mlbridge.PoolStats) bool {
		return s.Ready == 2 && s.Workers[0].Pid != victim && s.Workers[1].Pid != victim
	})
	if kindCalls(st) != 8 || st.Handlers.Modes["lm_wait"] != mlbridge.KindAsync {
		t.Fatalf("after a worker died: kinds %+v, modes %v", st.Handlers.Kinds, st.Handlers.Modes)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestPoolMetricsReachOpenTelemetry(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.MeterProvider, c.Name = mp, "echo-pool" })
	ctx := context.Background()
	poolCall[any](t, p, "echo", nil)
	if _, err := p.Call(ctx, "fail", nil); err == nil {
		t.Fatal("fail succeeded")
	}
	if _, err := p.Call(mlbridge.WithAPI(ctx, "legacy"), "echo", nil); err != nil {
		t.Fatal(err)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	// series name -> value, the name built from the data point's attributes
	got := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					got[m.Name+"{"+dp.Attributes.Encoded(attribute.DefaultEncoder())+"}"] = float64(dp.Value)
				}
			case metricdata.Gauge[float64]:
				for _, dp := range d.DataPoints {
					got[m.Name+"{"+dp.Attributes.Encoded(attribute.DefaultEncoder())+"}"] = dp.Value
				}
			}
		}
	}
	want := map[string]float64{
		mlbridge.MetricCalls + "{bridge=echo-pool,error=false,mode=call}":     2,
		mlbridge.MetricCalls + "{bridge=echo-pool,error=true,mode=call}":      1,
		mlbridge.MetricAPICalls + "{api=current,bridge=echo-pool,error=true}": 1,
		mlbridge.MetricAPICalls + "{api=legacy,bridge=echo-pool,error=false}": 1,
		mlbridge.MetricAsyncShare + "{bridge=echo-pool}":                      p.Stats().Handlers.AsyncShare,
	}
	for series, v := range want {
		if got[series] != v {
			t.Errorf("%s = %v, want %v", series, got[series], v)
		}
	}
	if got[mlbridge.MetricAsyncShare+"{bridge=echo-pool}"] <= 0 {
		t.Error("async share not observed")
	}
	// Calls per handler kind come from the workers' health checks: the series exist from the
	// start (each worker reports once when it starts), whatever their value by now.
	for _, kind := range []string{"async", "sync"} {
		if _, ok := got[mlbridge.MetricKindCalls+"{bridge=echo-pool,error=false,kind="+kind+"}"]; !ok {
			t.Errorf("no %s series for kind %s in %v", mlbridge.MetricKindCalls, kind, got)
		}
	}

	// A closed pool stops reporting its observable instruments. The synchronous ones (call
	// durations, worker lifecycle) keep their totals, as the SDK keeps every counter's.
	_ = p.Close()
	rm = metricdata.ResourceMetrics{}
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	synchronous := []string{mlbridge.MetricCallDuration, mlbridge.MetricWorkerStarts, mlbridge.MetricWorkerExits, mlbridge.MetricWorkerRecycles}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if !slices.Contains(synchronous, m.Name) {
				t.Errorf("instrument %s still reported after Close", m.Name)
			}
		}
	}
}
