package adapters

import "context"

// RecordForBenchmark exposes one API's telemetry record to the benchmarks.
func RecordForBenchmark(api string, phase Phase) func(context.Context, string) error {
	return newTelemetry(api, replacement, phase, nil).record
}
