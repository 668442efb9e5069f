package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/mlbridge/mlbridge"
)

// runArray measures large arrays through a Python echo (the echo bridge's echo_array, which
// returns the numpy array it received): Size bytes of float64 each way per call.
//
// Phases alternate for Rounds rounds, each about Duration/(4*Rounds) long:
//   - shared: the array allocated in shared memory (NewSharedArray), the result decoded into
//     one reused Array: mb_per_s. Python returns the array it received, which goes back in the
//     segment it came in (no copy in Python): one copy per round trip, Go's into the result;
//   - shared, new array: the same, but Python returns a copy (a new array, as most handlers
//     do), which it copies into a new segment: new_array_mb_per_s. peak_rss_mb covers both;
//   - memcpy: a Go copy of the same size between the same two buffers: memcpy_mb_per_s;
//   - pipe: the same call on a second worker with shared memory off (and frames large enough):
//     the path every array took before, pipe_mb_per_s.
//
// peak_rss_mb is the host's peak resident set during the shared phases only (Linux: the peak
// is reset before each, see peakRSS; elsewhere the whole run's peak, pipe phases included);
// baseline_rss_mb the resident set before the input and the result buffer existed, so
// payload_rss_ratio = (peak - baseline) / payload is what the arrays themselves cost: 2 is the
// floor (the caller holds the input and the result at once).
func runArray(ctx context.Context, o Options, python string) (*Report, error) {
	size := o.Size
	if size <= 0 {
		size = 64 << 20
	}
	n := int(size / 8)
	if n == 0 {
		return nil, errors.New("array size must be at least 8 bytes")
	}
	size = int64(n) * 8

	// SharedMemoryMin 1: the shared phases go through shared memory at any --size, so that a
	// sweep of sizes compares both paths (how DefaultSharedMemoryMin was chosen)
	shared, err := mlbridge.Open(ctx, mlbridge.Config{Bridge: o.Bridge, Python: python, Logger: o.Logger, SharedMemoryMin: 1})
	if err != nil {
		return nil, err
	}
	defer shared.Close()
	if !slices.Contains(shared.Info().Capabilities, "shm") {
		return nil, errors.New("the worker has no shared memory on this system")
	}
	pipe, err := mlbridge.Open(ctx, mlbridge.Config{Bridge: o.Bridge, Python: python, Logger: o.Logger,
		SharedMemoryMin: -1, MaxFrame: int(size) + 1<<20})
	if err != nil {
		return nil, err
	}
	defer pipe.Close()

	debug.FreeOSMemory()
	baseline := currentRSS() // the process before the payload: runtime, binary, two bridges
	in, err := mlbridge.NewSharedFloat64Array(n)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	view, _ := in.Float64View()
	for i := range view {
		view[i] = float64(i)
	}
	var out mlbridge.Array
	roundTrip := func(b *mlbridge.Bridge, arg mlbridge.Array, fresh bool) error {
		res, err := b.Call(ctx, "echo_array", map[string]any{"a": arg, "copy": fresh})
		if err != nil {
			return err
		}
		if err := res.Decode(&out); err != nil {
			return err
		}
		if len(out.Data) != int(size) {
			return fmt.Errorf("echo_array returned %d bytes, sent %d", len(out.Data), size)
		}
		return nil
	}
	// Warm up: imports, the first segment, out's buffer.
	for _, fresh := range []bool{false, true} {
		if err := roundTrip(shared, in.Array, fresh); err != nil {
			return nil, err
		}
	}
	if err := roundTrip(pipe, in.Array, false); err != nil {
		return nil, err
	}
	if !slicesEqual(out.Data, in.Data) {
		return nil, errors.New("echo_array changed the data")
	}

	phase := o.Duration / time.Duration(4*o.Rounds)
	var sharedRT, freshRT, memcpyT, pipeRT []time.Duration
	var peak int64
	for range o.Rounds {
		debug.FreeOSMemory() // what the pipe phase left is not the shared phase's
		resetPeakRSS()
		ts, err := timed(phase, func() error { return roundTrip(shared, in.Array, false) })
		if err != nil {
			return nil, fmt.Errorf("shared: %w", err)
		}
		sharedRT = append(sharedRT, ts...)
		tf, err := timed(phase, func() error { return roundTrip(shared, in.Array, true) })
		if err != nil {
			return nil, fmt.Errorf("shared, new array: %w", err)
		}
		freshRT = append(freshRT, tf...)
		peak = max(peak, peakRSS())
		tm, _ := timed(phase, func() error { copy(out.Data, in.Data); return nil })
		memcpyT = append(memcpyT, tm...)
		tp, err := timed(phase, func() error { return roundTrip(pipe, in.Array, false) })
		if err != nil {
			return nil, fmt.Errorf("pipe: %w", err)
		}
		pipeRT = append(pipeRT, tp...)
	}
	mb := float64(size) / 1e6
	rate := func(ts []time.Duration) float64 { return mb / latencies(ts).percentile(0.5).Seconds() }
	return &Report{
		Scenario: "array", Workers: 1, Concurrency: 1, DurationS: o.Duration.Seconds(), Rounds: o.Rounds,
		SizeBytes: size, MBPerS: rate(sharedRT), MemcpyMBPerS: rate(memcpyT), PipeMBPerS: rate(pipeRT),
		NewArrayMBPerS: rate(freshRT),
		PeakRSSMB:      float64(peak) / 1e6, PeakRSSRatio: float64(peak) / float64(size),
		BaselineRSSMB: float64(baseline) / 1e6, PayloadRSSRatio: float64(peak-baseline) / float64(size),
		P50us: micros(latencies(sharedRT).percentile(0.5)), P99us: micros(latencies(sharedRT).percentile(0.99)),
		Calls: int64(len(sharedRT) + len(freshRT) + len(pipeRT)),
	}, nil
}

// timed runs f back to back for about d (at least 3 times) and returns each run's time.
func timed(d time.Duration, f func() error) ([]time.Duration, error) {
	var ts []time.Duration
	end := time.Now().Add(d)
	for len(ts) < 3 || time.Now().Before(end) {
		t0 := time.Now()
		if err := f(); err != nil {
			return ts, err
		}
		ts = append(ts, time.Since(t0))
	}
	return ts, nil
}

func slicesEqual(a, b []byte) bool { return string(a) == string(b) }
