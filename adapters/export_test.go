package adapters

import "context"

// RecordForBenchmark exposes one API's telemetry record to the benchmarks.
func RecordForBenchmark(api string, phase Phase) func(context.Context, string) error {
	t := newTelemetry(api, replacement, phase, nil)
	return func(ctx context.Context, op string) error {
		_, err := t.record(ctx, op)
		return err
	}
}
