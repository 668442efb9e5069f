package adapters_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/adapters"
	"github.com/mlbridge/mlbridge/dspy"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// legacyCalls reads the mlbridge.legacy.calls counter: sum per "api op".
func legacyCalls(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != adapters.CounterName {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				api, _ := dp.Attributes.Value("api")
				op, _ := dp.Attributes.Value("op")
				out[api.AsString()+" "+op.AsString()] += dp.Value
			}
		}
	}
	return out
}

// Every legacy call is counted in OpenTelemetry; the phase decides what is logged, and "error"
// refuses the call. New-API calls on the same pool are not counted.
func TestDeprecationTelemetry(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	prev := otel.GetMeterProvider()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	t.Cleanup(func() { otel.SetMeterProvider(prev) })

	ctx := context.Background()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{Config: mlbridge.Config{Bridge: dspy.Bridge, Python: testenv.Python(t)}, Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	legacy, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Adapter: p, Logger: logger, Phase: adapters.PhaseLog})
	if err != nil {
		t.Fatal(err)
	}
	if err := legacy.ConfigureLM(ctx, dummyLM(10)); err != nil {
		t.Fatal(err)
	}
	id, err := legacy.CreateProgram(ctx, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := legacy.ExecuteProgram(ctx, id, map[string]any{"question": "q"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dspy.New(p).ExecuteProgram(ctx, id, map[string]any{"question": "q"}); err != nil {
		t.Fatal(err)
	}
	got := legacyCalls(t, reader)
	if got["adapters.PythonPoolV2 execute"] != 3 || got["adapters.PythonPoolV2 create:program"] != 1 || got["adapters.PythonPoolV2 create:lm"] != 1 {
		t.Fatalf("counted %v", got)
	}
	if n := strings.Count(logs.String(), "op=execute"); n != 1 {
		t.Fatalf("phase log: execute logged %d times, want once:\n%s", n, logs.String())
	}
	// The line says what each tool does with this API's calls.
	if want := "migrate=\"`mlbridge migrate --apply` replaces the method calls with p.Client calls (`go fix` does not); it reports NewPythonPoolV2"; !strings.Contains(logs.String(), want) {
		t.Fatalf("phase log: no %s in\n%s", want, logs.String())
	}

	warned, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Adapter: p, Logger: logger, Phase: adapters.PhaseWarn})
	if err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	for range 2 {
		_, _ = warned.ExecuteProgram(ctx, id, map[string]any{"question": "q"})
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 2 {
		t.Fatalf("phase warn: %d warnings, want 2:\n%s", n, logs.String())
	}

	t.Setenv(adapters.PhaseEnv, "error")
	refused, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Adapter: p})
	if !errors.Is(err, adapters.ErrDeprecated) || refused != nil {
		t.Fatalf("phase error: %v", err)
	}
	if !strings.Contains(err.Error(), "`mlbridge migrate --apply` replaces the method calls with p.Client calls (`go fix` does not); it reports NewPythonPoolV2 and the type, which a person replaces") {
		t.Fatalf("phase error: the message does not say what the tools do: %v", err)
	}
	if _, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Adapter: p, Phase: "sometimes"}); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("bad phase: %v", err)
	}
}

// The package-level functions' deprecation message says that `mlbridge migrate` reports their
// calls and that no tool rewrites them (it once said `mlbridge migrate` rewrote them).
func TestPackageLevelDeprecationMessage(t *testing.T) {
	t.Setenv(adapters.PhaseEnv, "error")
	if err := adapters.CloseDefault(); err != nil {
		t.Fatal(err)
	}
	_, err := adapters.ListPrograms(context.Background()) // refused before any worker starts
	if !errors.Is(err, adapters.ErrDeprecated) {
		t.Fatalf("phase error: %v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "neither `go fix` nor `mlbridge migrate` rewrites these calls; `mlbridge migrate` reports them") ||
		strings.Contains(msg, "migrate` rewrites the call") {
		t.Fatalf("the message does not say what the tools do: %s", msg)
	}
}

// What counting costs per legacy call, with an OpenTelemetry SDK installed (the no-op default
// costs less). Compare with an ExecuteProgram of ~1 ms (docs/BENCHMARKS.md).
func BenchmarkDeprecationRecord(b *testing.B) {
	prev := otel.GetMeterProvider()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())))
	b.Cleanup(func() { otel.SetMeterProvider(prev) })
	record := adapters.RecordForBenchmark("adapters.PythonPoolV2", adapters.PhaseOff)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = record(ctx, "execute")
	}
}
