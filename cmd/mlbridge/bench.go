package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/bench"
)

func newBenchCmd(g *globalFlags) *cobra.Command {
	o := bench.Options{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a scenario against a baseline measured in the same run",
		Long: `Runs a scenario and, in the same run, its floor: a bare Python length-prefixed echo
over the same kind of pipes. Phases alternate for --rounds rounds so machine noise hits both.
p50_us/p99_us: one call at a time; calls_per_s: --concurrency callers.`,
		Example: "  mlbridge bench --scenario noop --workers 1 --concurrency 64 --duration 10s --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Python, o.Bridge, o.Logger = g.python, g.bridge, g.logger()
			rep, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if err := printBench(cmd.OutOrStdout(), rep, asJSON); err != nil {
				return err
			}
			return benchFailures(rep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Scenario, "scenario", "noop", "scenario: noop, startup, pool-overhead, dspy, legacy-vs-new, io-bound, chaos, trace-overhead, nats, callback, batch, array")
	f.Var(byteSizeFlag{&o.Size}, "size", "scenario array: bytes each way per call (e.g. 64MiB; default 64MiB)")
	intFlagMin(f, &o.Workers, "workers", 1, 1, "worker processes")
	intFlagMin(f, &o.Concurrency, "concurrency", 64, 1, "concurrent callers")
	durationFlagPositive(f, &o.Duration, "duration", 10*time.Second, "total measuring time")
	intFlagMin(f, &o.Rounds, "rounds", 3, 1, "alternating floor/runtime rounds")
	durationFlagNonNegative(f, &o.IdleSpin, "idle-spin", 0, "worker polls for the next request this long before sleeping (e.g. 50us)")
	f.BoolVar(&o.Preload, "preload", false, "pools fork workers from a preloaded interpreter (zygote)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

// printBench prints the report: one JSON object, or lines for a person.
func printBench(w io.Writer, rep *bench.Report, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(rep)
	}
	if rep.Scenario == "startup" {
		fmt.Fprintf(w, "startup: 1 worker ready in %.0f ms, 8 workers in %.0f ms: ratio %.2f (median of %d rounds)\n",
			rep.Startup1ms, rep.Startup8ms, rep.StartupRatio, rep.Rounds)
		return nil
	}
	if rep.Scenario == "io-bound" {
		fmt.Fprintf(w, "io-bound: %d callers, each call waits %v in Python: sync handler %.0f calls/s, async handler %.0f calls/s (async p50 %.1f ms, p99 %.1f ms; %d calls, %d errors)\n",
			rep.Concurrency, 100*time.Millisecond, rep.SyncCallsPerS, rep.AsyncCallsPerS, rep.LoadedP50us/1e3, rep.LoadedP99us/1e3, rep.Calls, rep.Errors)
		return nil
	}
	if rep.Scenario == "legacy-vs-new" {
		fmt.Fprintf(w, "legacy-vs-new: ExecuteProgram p50 %.1f µs through the new interface, %.1f µs through the legacy one: %+.2f%% (%d calls alternating, %d errors)\n",
			rep.P50us, rep.LegacyP50us, rep.OverheadPct, rep.Calls, rep.Errors)
		return nil
	}
	if rep.Scenario == "dspy" {
		fmt.Fprintf(w, "dspy: ExecuteProgram p50 %.1f µs (p99 %.1f), the same program called directly in Python p50 %.1f µs: bridge overhead %.1f µs per call (%d calls, %d errors)\n",
			rep.P50us, rep.P99us, rep.DirectP50us, rep.OverheadUs, rep.Calls, rep.Errors)
		return nil
	}
	if rep.Scenario == "chaos" {
		printChaos(w, rep)
		return nil
	}
	if rep.Scenario == "trace-overhead" {
		fmt.Fprintf(w, "trace overhead: p50 %.1f µs with every call traced (Go and worker spans exported), %.1f µs with no provider: %+.1f%% (%d calls alternating, %d errors; %d Go spans exported, %d worker OTLP exports)\n",
			rep.P50us, rep.BaseP50us, rep.OverheadPct, rep.Calls, rep.Errors, rep.SpansExported, rep.WorkerExports)
		return nil
	}
	if rep.Scenario == "nats" {
		fmt.Fprintf(w, "nats: remote no-op p50 %.1f µs (p99 %.1f) through a node, %.1f µs on a local pool, raw NATS request-reply %.1f µs; %.0f calls/s with %d callers over %d nodes (%d calls, %d errors)\n",
			rep.P50us, rep.P99us, rep.LocalP50us, rep.NatsP50us, rep.CallsPerS, rep.Concurrency, rep.Nodes, rep.Calls, rep.Errors)
		return nil
	}
	if rep.Scenario == "batch" {
		fmt.Fprintf(w, "batch: %d callers predicting one row each with scikit-learn: %.0f calls/s batched (max size %d, max wait %.1f ms, mean batch %.1f), %.0f calls/s unbatched: speedup %.1fx; p99 %.2f ms batched, %.2f ms unbatched (%d calls, %d errors)\n",
			rep.Concurrency, rep.BatchedCallsPerS, rep.BatchMaxSize, rep.BatchMaxWaitUs/1e3, rep.MeanBatch, rep.UnbatchedCallsPerS,
			rep.Speedup, rep.BatchedP99us/1e3, rep.UnbatchedP99us/1e3, rep.Calls, rep.Errors)
		return nil
	}
	if rep.Scenario == "array" {
		fmt.Fprintf(w, "array: %d MiB of float64 each way through a Python echo: %.0f MB/s through shared memory (p50 %.1f ms; %.0f MB/s when Python returns a new array), %.0f MB/s through the pipe, Go memcpy %.0f MB/s; host peak RSS %.0f MB (%.2f x the payload)\n",
			rep.SizeBytes>>20, rep.MBPerS, rep.P50us/1e3, rep.NewArrayMBPerS, rep.PipeMBPerS, rep.MemcpyMBPerS, rep.PeakRSSMB, rep.PeakRSSRatio)
		return nil
	}
	if rep.Scenario == "pool-overhead" {
		fmt.Fprintf(w, "pool overhead: p50 %.1f µs through a Pool, %.1f µs through a Bridge: %+.1f%%\n",
			rep.P50us, rep.BridgeP50us, rep.PoolOverheadPct)
		return nil
	}
	fmt.Fprintf(w, "scenario %s, %d worker(s), concurrency %d, %.0fs in %d rounds\n",
		rep.Scenario, rep.Workers, rep.Concurrency, rep.DurationS, rep.Rounds)
	fmt.Fprintf(w, "  one at a time: p50 %.1f µs  p99 %.1f µs   floor p50 %.1f µs   ratio %.2fx\n",
		rep.P50us, rep.P99us, rep.FloorP50us, rep.RatioP50)
	fmt.Fprintf(w, "  concurrent:    %.0f calls/s (p50 %.0f µs, p99 %.0f µs)   floor %.0f/s   ratio %.2f\n",
		rep.CallsPerS, rep.LoadedP50us, rep.LoadedP99us, rep.FloorCallsPerS, rep.RatioRate)
	fmt.Fprintf(w, "  calls %d, errors %d, restarts %d\n", rep.Calls, rep.Errors, rep.Restarts)
	return nil
}

// printChaos prints the chaos scenario's figures against the promises of docs/RELIABILITY.md.
func printChaos(w io.Writer, rep *bench.Report) {
	fmt.Fprintf(w, "kill -9 every 500ms for %.0fs, %d workers, %d idempotent callers: %d kills, %d of %d calls failed; full again %.0f ms after the last kill (%.0f ms with preload)\n",
		rep.DurationS, rep.Workers, rep.Concurrency, rep.Kills, rep.KillFailedCalls, rep.Calls, rep.KillRecoveryMs, rep.KillRecoveryPreloadMs)
	fmt.Fprintf(w, "wedged event loop: out of rotation %.0f ms after the wedging call (GIL held in C), %.0f ms (blocking call in async def); killed after %.0f ms; %d idempotent calls failed meanwhile\n",
		rep.WedgeDetectMs, rep.WedgeAsyncDetectMs, rep.WedgeKillMs, rep.WedgeFailedCalls)
	for _, c := range rep.HostDeathCases {
		fmt.Fprintf(w, "host killed by %s (preload %v): %d worker processes and children gone in %.0f ms, %d left after 2 s\n",
			c.Signal, c.Preload, c.Processes, c.CleanupMs, c.Leftover)
	}
}

// errBenchFailed makes bench exit non-zero after it printed a report in which calls failed
// (or, in chaos, a promise of docs/RELIABILITY.md was broken): figures measured on failing
// calls measure the failure.
var errBenchFailed = errors.New("bench failed")

// benchFailures returns errBenchFailed, with what failed, when the report counts failed calls:
// errors in the measuring scenarios; in chaos, idempotent calls that failed under the kill or
// the wedge load (the pool must carry them through) and processes that outlived a killed host.
func benchFailures(rep *bench.Report) error {
	var what []string
	if rep.Errors > 0 {
		what = append(what, fmt.Sprintf("%d of %d calls failed", rep.Errors, rep.Calls))
	}
	if rep.KillFailedCalls > 0 {
		what = append(what, fmt.Sprintf("%d idempotent calls failed under the kill load", rep.KillFailedCalls))
	}
	if rep.WedgeFailedCalls > 0 {
		what = append(what, fmt.Sprintf("%d idempotent calls failed while a worker was wedged", rep.WedgeFailedCalls))
	}
	if rep.HostDeathLeftover > 0 {
		what = append(what, fmt.Sprintf("%d processes outlived their killed host", rep.HostDeathLeftover))
	}
	if len(what) == 0 {
		return nil
	}
	return fmt.Errorf("%w: scenario %s: %s", errBenchFailed, rep.Scenario, strings.Join(what, "; "))
}

// byteSizeFlag is a size flag: 64MiB, 1GiB, 1000000 (mlbridge.ParseByteSize).
type byteSizeFlag struct{ v *int64 }

func (f byteSizeFlag) String() string {
	if f.v == nil || *f.v == 0 {
		return ""
	}
	return mlbridge.ByteSize(*f.v).String()
}

func (f byteSizeFlag) Set(s string) error {
	n, err := mlbridge.ParseByteSize(s)
	if err != nil {
		return err
	}
	if n <= 0 {
		return fmt.Errorf("must be positive")
	}
	*f.v = int64(n)
	return nil
}

func (byteSizeFlag) Type() string { return "bytes" }
