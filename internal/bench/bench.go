// Package bench implements `mlbridge bench`: scenarios that measure the runtime against a
// baseline measured in the same run, so that ratios, not absolute numbers, carry across
// noisy machines.
package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/wire"
	"github.com/mlbridge/mlbridge/internal/worker"
)

// Options selects a scenario and its load.
type Options struct {
	Scenario    string
	Workers     int
	Concurrency int
	Duration    time.Duration // total measuring time, split across phases and rounds
	Rounds      int           // floor and runtime phases alternate this many times
	IdleSpin    time.Duration // passed to the worker (Config.IdleSpin)
	Preload     bool          // pools fork workers from a zygote (PoolConfig.Preload)
	Python      string
	Bridge      string
	Size        int64 // scenario array: bytes each way per call (default 64 MiB)
	Logger      *slog.Logger
	// HostCommand runs the mlbridge CLI for scenario chaos's host-death loads (default: this
	// executable, which is the CLI when run as `mlbridge bench`).
	HostCommand []string
}

// Report is the JSON contract of `mlbridge bench --json`.
type Report struct {
	Scenario    string  `json:"scenario"`
	Workers     int     `json:"workers"`
	Concurrency int     `json:"concurrency"`
	DurationS   float64 `json:"duration_s"`
	Rounds      int     `json:"rounds"`
	IdleSpinUs  int64   `json:"idle_spin_us"`
	Preload     bool    `json:"preload"`

	// Latency of one call at a time (no queueing): what the runtime adds per call.
	P50us float64 `json:"p50_us"`
	P99us float64 `json:"p99_us"`
	// Throughput and latency with Concurrency callers.
	CallsPerS   float64 `json:"calls_per_s"`
	LoadedP50us float64 `json:"loaded_p50_us"`
	LoadedP99us float64 `json:"loaded_p99_us"`
	Calls       int64   `json:"calls"`
	Errors      int64   `json:"errors"`
	Restarts    int64   `json:"restarts"`

	// The floor: a bare length-prefixed echo in Python over the same pipes.
	FloorP50us     float64 `json:"floor_p50_us"`
	FloorP99us     float64 `json:"floor_p99_us"`
	FloorCallsPerS float64 `json:"floor_calls_per_s"`
	RatioP50       float64 `json:"ratio_p50"`         // p50_us / floor_p50_us (goal <= 1.5)
	RatioRate      float64 `json:"ratio_calls_per_s"` // calls_per_s / floor_calls_per_s (goal >= 0.5)

	// Scenario pool-overhead: p50_us is through a Pool of one worker, this through a Bridge.
	BridgeP50us     float64 `json:"bridge_p50_us,omitempty"`
	PoolOverheadPct float64 `json:"pool_overhead_pct,omitempty"` // goal <= 10

	// Scenario callback: p50_us is a call whose Python handler makes one host call (a Go
	// no-op), noop_p50_us a plain no-op call on the same worker; ratio_p50 = p50_us /
	// noop_p50_us (goal <= 1.5).
	NoopP50us float64 `json:"noop_p50_us,omitempty"`
	// Scenario dspy: noop_p50_us is an async no-op (ping) through the same pool, and
	// sync_noop_p50_us a sync one (list_programs): the pipe round trip, then with the hop onto
	// the worker's thread pool — the transport's share of overhead_us, measured in the run.
	SyncNoopP50us float64 `json:"sync_noop_p50_us,omitempty"`
	NoopP99us     float64 `json:"noop_p99_us,omitempty"`

	// Scenario dspy: p50_us is ExecuteProgram through the bridge (DummyLM); direct_* the same
	// program called in the worker's own Python; overhead_us = p50_us - direct_p50_us.
	DirectP50us float64 `json:"direct_p50_us,omitempty"`
	DirectP99us float64 `json:"direct_p99_us,omitempty"`
	OverheadUs  float64 `json:"overhead_us,omitempty"`

	// Scenario legacy-vs-new: p50_us is the new interface (dspy.Client), legacy_* the legacy
	// PythonPoolV2 on the same pool; overhead_pct = new vs legacy at p50 (goal <= 1).
	LegacyP50us float64 `json:"legacy_p50_us,omitempty"`
	LegacyP99us float64 `json:"legacy_p99_us,omitempty"`
	OverheadPct float64 `json:"overhead_pct,omitempty"`

	// Scenario trace-overhead: p50_us is a pool whose calls are all traced (SDK provider,
	// always sampled, batch span processor: each call's client and handler spans; its worker
	// set up to export the spans Python code starts over OTLP/HTTP to a loopback receiver),
	// base_* the same pool with no provider; overhead_pct = traced vs base at p50 (goal <= 5).
	// spans_exported counts the Go spans exported, worker_exports the workers' OTLP requests
	// (0 for noop: the worker starts no span per request).
	BaseP50us     float64 `json:"base_p50_us,omitempty"`
	BaseP99us     float64 `json:"base_p99_us,omitempty"`
	SpansExported int64   `json:"spans_exported,omitempty"`
	WorkerExports int64   `json:"worker_exports,omitempty"`
	// The breakdown: traced the same way, its worker with no exporter set up (the API alone).
	GoTracedP50us       float64 `json:"go_traced_p50_us,omitempty"`
	GoTracedOverheadPct float64 `json:"go_traced_overhead_pct,omitempty"`

	// Scenario nats: p50_us is a remote no-op through a node on NATS (mlnats, loopback),
	// local_p50_us the same no-op on a local pool, nats_p50_us a raw NATS request-reply echo
	// between two connections (goals: p50_us <= 250 and <= 2 x nats_p50_us); calls_per_s is
	// concurrency callers over nodes nodes.
	LocalP50us float64 `json:"local_p50_us,omitempty"`
	NatsP50us  float64 `json:"nats_p50_us,omitempty"`
	Nodes      int     `json:"nodes,omitempty"`

	// Scenario io-bound: calls/s of one worker whose calls each wait 100 ms in Python, through
	// a sync handler (bounded by the worker's thread pool) and an async one (goal >= 5,000).
	SyncCallsPerS  float64 `json:"sync_calls_per_s,omitempty"`
	AsyncCallsPerS float64 `json:"async_calls_per_s,omitempty"`

	// Scenario startup: time until every worker completed its handshake.
	Startup1ms   float64 `json:"startup_1_ms,omitempty"`
	Startup8ms   float64 `json:"startup_8_ms,omitempty"`
	StartupRatio float64 `json:"startup_ratio_8_vs_1,omitempty"` // goal <= 1.3

	// Scenario chaos (docs/RELIABILITY.md). kill: a worker SIGKILLed every 500 ms for
	// duration_s under concurrency idempotent callers; wedge: one worker's event loop stopped;
	// host death: a serve whose workers started children, killed.
	Kills                 int             `json:"kills,omitempty"`
	KillFailedCalls       int64           `json:"kill_failed_calls"`                  // goal 0
	KillRecoveryMs        float64         `json:"kill_recovery_ms,omitempty"`         // full again after the last kill (goal <= 1000)
	KillRecoveryPreloadMs float64         `json:"kill_recovery_preload_ms,omitempty"` // the same with Preload
	WedgeDetectMs         float64         `json:"wedge_detect_ms,omitempty"`          // GIL held in C → out of rotation (goal <= 2000)
	WedgeAsyncDetectMs    float64         `json:"wedge_async_detect_ms,omitempty"`    // blocking call in an async def → out of rotation
	WedgeKillMs           float64         `json:"wedge_kill_ms,omitempty"`            // → killed, its calls failed (HeartbeatTimeout 10s)
	WedgeFailedCalls      int64           `json:"wedge_failed_calls"`                 // idempotent calls failed meanwhile (goal 0)
	HostDeathMaxMs        float64         `json:"host_death_cleanup_ms,omitempty"`    // worst case below (goal <= 2000)
	HostDeathLeftover     int             `json:"host_death_leftover"`                // processes alive 2 s after (goal 0)
	HostDeathCases        []HostDeathCase `json:"host_death_cases,omitempty"`

	// Scenario batch: single-row scikit-learn predicts from concurrency callers, on a pool
	// that batches predict and on one with batching off, in alternating phases (goals:
	// speedup >= 10, batched_p99_us <= unbatched_p99_us + max wait + 1 ms).
	BatchedCallsPerS   float64 `json:"batched_calls_per_s,omitempty"`
	UnbatchedCallsPerS float64 `json:"unbatched_calls_per_s,omitempty"`
	Speedup            float64 `json:"speedup,omitempty"`
	BatchedP50us       float64 `json:"batched_p50_us,omitempty"`
	BatchedP99us       float64 `json:"batched_p99_us,omitempty"`
	UnbatchedP50us     float64 `json:"unbatched_p50_us,omitempty"`
	UnbatchedP99us     float64 `json:"unbatched_p99_us,omitempty"`
	BatchMaxSize       int     `json:"batch_max_size,omitempty"`
	BatchMaxWaitUs     float64 `json:"batch_max_wait_us,omitempty"`
	MeanBatch          float64 `json:"mean_batch,omitempty"` // calls per batch sent

	// Scenario array: size_bytes of float64 each way per call through a Python echo, the
	// input allocated in shared memory, the result decoded into a reused Array. mb_per_s:
	// payload each way / round-trip time (goal >= 3000); memcpy_mb_per_s: a Go copy of the same
	// size in the same run; pipe_mb_per_s: the same call with shared memory off; peak_rss_mb:
	// the host's peak resident set during the shared phases (goal <= 2.2 x the payload).
	SizeBytes    int64   `json:"size_bytes,omitempty"`
	MBPerS       float64 `json:"mb_per_s,omitempty"`
	MemcpyMBPerS float64 `json:"memcpy_mb_per_s,omitempty"`
	PipeMBPerS   float64 `json:"pipe_mb_per_s,omitempty"`
	// new_array_mb_per_s: the same round trip when Python returns a new array (x.copy()).
	NewArrayMBPerS float64 `json:"new_array_mb_per_s,omitempty"`
	PeakRSSMB      float64 `json:"peak_rss_mb,omitempty"`
	PeakRSSRatio   float64 `json:"peak_rss_ratio,omitempty"` // peak_rss_mb / payload
	// baseline_rss_mb: the host before the arrays existed; payload_rss_ratio: (peak - baseline)
	// / payload, what the arrays cost (2 is the floor: input and result are both held).
	BaselineRSSMB   float64 `json:"baseline_rss_mb,omitempty"`
	PayloadRSSRatio float64 `json:"payload_rss_ratio,omitempty"`

	GoVersion string `json:"go_version"`
	CPUs      int    `json:"cpus"`
}

// callFunc makes one no-op call through whatever is measured (a Bridge or a Pool).
type callFunc func(ctx context.Context) error

// Run executes the scenario.
func Run(ctx context.Context, o Options) (*Report, error) {
	rep, err := run(ctx, o)
	if rep != nil {
		rep.GoVersion, rep.CPUs, rep.IdleSpinUs, rep.Preload = runtime.Version(), runtime.NumCPU(), o.IdleSpin.Microseconds(), o.Preload
	}
	return rep, err
}

func run(ctx context.Context, o Options) (*Report, error) {
	if o.Concurrency < 1 || o.Rounds < 1 || o.Duration <= 0 || o.Workers < 1 {
		return nil, errors.New("workers, concurrency, rounds and duration must be positive")
	}
	python, err := worker.ResolvePython(o.Python, "")
	if err != nil {
		return nil, err
	}
	switch o.Scenario {
	case "noop":
	case "startup":
		return runStartup(ctx, o, python)
	case "pool-overhead":
		return runPoolOverhead(ctx, o, python)
	case "dspy":
		return runDSPy(ctx, o, python)
	case "legacy-vs-new":
		return runLegacyVsNew(ctx, o, python)
	case "io-bound":
		return runIOBound(ctx, o, python)
	case "chaos":
		return runChaos(ctx, o, python)
	case "trace-overhead":
		return runTraceOverhead(ctx, o, python)
	case "nats":
		return runNATS(ctx, o, python)
	case "callback":
		return runCallback(ctx, o, python)
	case "batch":
		return runBatch(ctx, o, python)
	case "array":
		return runArray(ctx, o, python)
	default:
		return nil, fmt.Errorf("unknown scenario %q (have: noop, startup, pool-overhead, dspy, legacy-vs-new, io-bound, chaos, trace-overhead, nats, callback, batch, array)", o.Scenario)
	}
	cfg := mlbridge.Config{Bridge: o.Bridge, Python: python, Logger: o.Logger, IdleSpin: o.IdleSpin}
	var call callFunc
	var restarts func() int64
	if o.Workers == 1 {
		b, err := mlbridge.Open(ctx, cfg)
		if err != nil {
			return nil, err
		}
		defer b.Close()
		call = func(ctx context.Context) error { _, err := b.Call(ctx, "noop", nil); return err }
		restarts = func() int64 { return 0 }
	} else {
		p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{Config: cfg, Size: o.Workers, CrashLoopThreshold: 1 << 30, Preload: o.Preload})
		if err != nil {
			return nil, err
		}
		defer p.Close()
		call = func(ctx context.Context) error { _, err := p.Call(ctx, "noop", nil); return err }
		restarts = func() int64 { st := p.Stats(); return int64(st.Crashes + st.Recycles) }
	}
	floor, err := startFloor(python)
	if err != nil {
		return nil, err
	}
	defer floor.close()

	enc := wire.NewEncoder()
	frame, err := enc.Req(1, "noop", nil, 0, false)
	if err != nil {
		return nil, err
	}
	frame = append([]byte(nil), frame...)

	phase := o.Duration / time.Duration(4*o.Rounds)
	var floorLat, seqLat, loadLat latencies
	var floorRates, rates []float64
	var calls, errs int64
	// Warm up both sides (imports, allocator, branch caches) before measuring.
	if _, err := floor.sequential(frame, phase/4); err != nil {
		return nil, err
	}
	if _, _, err := sequentialCalls(ctx, call, phase/4); err != nil {
		return nil, err
	}
	for range o.Rounds {
		l, err := floor.sequential(frame, phase)
		if err != nil {
			return nil, fmt.Errorf("floor: %w", err)
		}
		floorLat = append(floorLat, l...)
		l, e, err := sequentialCalls(ctx, call, phase)
		if err != nil {
			return nil, err
		}
		seqLat = append(seqLat, l...)
		errs += e
		r, err := floor.pipelined(frame, o.Concurrency, phase)
		if err != nil {
			return nil, fmt.Errorf("floor: %w", err)
		}
		floorRates = append(floorRates, r)
		res := concurrentCalls(ctx, call, o.Concurrency, phase)
		rates = append(rates, res.rate)
		loadLat = append(loadLat, res.lat...)
		calls += res.calls
		errs += res.errors
	}
	rep := &Report{
		Scenario: o.Scenario, Workers: o.Workers, Concurrency: o.Concurrency,
		DurationS: o.Duration.Seconds(), Rounds: o.Rounds,
		P50us: micros(seqLat.percentile(0.50)), P99us: micros(seqLat.percentile(0.99)),
		CallsPerS:   median(rates),
		LoadedP50us: micros(loadLat.percentile(0.50)), LoadedP99us: micros(loadLat.percentile(0.99)),
		Calls: calls + int64(len(seqLat)), Errors: errs, Restarts: restarts(),
		FloorP50us: micros(floorLat.percentile(0.50)), FloorP99us: micros(floorLat.percentile(0.99)),
		FloorCallsPerS: median(floorRates),
	}
	if rep.FloorP50us > 0 {
		rep.RatioP50 = rep.P50us / rep.FloorP50us
	}
	if rep.FloorCallsPerS > 0 {
		rep.RatioRate = rep.CallsPerS / rep.FloorCallsPerS
	}
	return rep, nil
}

// sequentialCalls makes one call at a time for d. Errors are counted, not fatal: a bench
// run while workers are killed from outside must finish and report them.
func sequentialCalls(ctx context.Context, call callFunc, d time.Duration) (latencies, int64, error) {
	var lat latencies
	var errs int64
	end := time.Now().Add(d)
	for time.Now().Before(end) && ctx.Err() == nil {
		t0 := time.Now()
		err := call(ctx)
		lat = append(lat, time.Since(t0))
		if err != nil {
			errs++
		}
	}
	return lat, errs, ctx.Err()
}

type loadResult struct {
	rate          float64
	lat           latencies
	calls, errors int64
}

func concurrentCalls(ctx context.Context, call callFunc, concurrency int, d time.Duration) loadResult {
	var calls, errs atomic.Int64
	var mu sync.Mutex
	var all latencies
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat latencies
			for time.Now().Before(end) && ctx.Err() == nil {
				t0 := time.Now()
				err := call(ctx)
				lat = append(lat, time.Since(t0))
				calls.Add(1)
				if err != nil {
					errs.Add(1)
				}
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	return loadResult{rate: float64(calls.Load()) / elapsed.Seconds(), lat: all, calls: calls.Load(), errors: errs.Load()}
}
