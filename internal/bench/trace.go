package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/mlbridge/mlbridge"
)

// countingExporter is the Go side's real exporter for the measurement: the SDK's batch span
// processor hands it every span, which it counts and drops (an in-memory exporter would keep
// them all; the hot path is the same).
type countingExporter struct{ spans atomic.Int64 }

func (e *countingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.spans.Add(int64(len(spans)))
	return nil
}

func (e *countingExporter) Shutdown(context.Context) error { return nil }

// otlpSink is an OTLP/HTTP endpoint on loopback for the workers' exporter: it reads and
// drops each export and counts the requests.
type otlpSink struct {
	srv     *http.Server
	url     string
	exports atomic.Int64
}

func startOTLPSink() (*otlpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &otlpSink{url: "http://" + ln.Addr().String() + "/v1/traces"}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		s.exports.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// runTraceOverhead measures what tracing adds to a call: pools of one worker each, one with an
// SDK TracerProvider that samples every call and exports through a batch span processor (the
// host emits each call's client and handler spans; its worker is set up to export the spans
// Python code starts over OTLP/HTTP to a loopback receiver, and noop starts none), one with no
// provider at all, and for the breakdown one traced the same way whose worker has no exporter
// (the API alone). Calls rotate among them one by one, and the p50s are compared.
func runTraceOverhead(ctx context.Context, o Options, python string) (*Report, error) {
	sink, err := startOTLPSink()
	if err != nil {
		return nil, err
	}
	defer sink.srv.Close()
	exp := &countingExporter{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(exp))
	defer tp.Shutdown(context.Background())

	base := mlbridge.Config{Bridge: o.Bridge, Python: python, Logger: o.Logger, IdleSpin: o.IdleSpin}
	traced := base
	traced.TracerProvider = tp
	traced.Env = append(traced.Env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="+sink.url)
	pb, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{Config: base, Size: 1})
	if err != nil {
		return nil, err
	}
	defer pb.Close()
	pt, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{Config: traced, Size: 1})
	if err != nil {
		return nil, err
	}
	goOnly := base
	goOnly.TracerProvider = tp
	pg, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{Config: goOnly, Size: 1})
	if err != nil {
		return nil, err
	}
	defer pg.Close()

	var baseLat, traceLat, goLat latencies
	var errs int64
	measure := func(lat *latencies, p *mlbridge.Pool) {
		t0 := time.Now()
		if _, err := p.Call(ctx, "noop", nil); err != nil {
			errs++
		}
		*lat = append(*lat, time.Since(t0))
	}
	warm := time.Now().Add(o.Duration / 10)
	for time.Now().Before(warm) && ctx.Err() == nil {
		_, _ = pb.Call(ctx, "noop", nil)
		_, _ = pt.Call(ctx, "noop", nil)
		_, _ = pg.Call(ctx, "noop", nil)
	}
	end := time.Now().Add(o.Duration)
	for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
		switch i % 3 { // rotate which goes first, so none always follows another
		case 0:
			measure(&baseLat, pb)
			measure(&traceLat, pt)
			measure(&goLat, pg)
		case 1:
			measure(&traceLat, pt)
			measure(&goLat, pg)
			measure(&baseLat, pb)
		default:
			measure(&goLat, pg)
			measure(&baseLat, pb)
			measure(&traceLat, pt)
		}
	}
	_ = pt.Close() // the worker flushes its spans as it exits
	_ = tp.ForceFlush(ctx)
	rep := &Report{
		Scenario: "trace-overhead", Workers: 1, Concurrency: 1, DurationS: o.Duration.Seconds(), Rounds: 1,
		P50us: micros(traceLat.percentile(0.5)), P99us: micros(traceLat.percentile(0.99)),
		BaseP50us: micros(baseLat.percentile(0.5)), BaseP99us: micros(baseLat.percentile(0.99)),
		GoTracedP50us: micros(goLat.percentile(0.5)),
		Calls:         int64(len(baseLat) + len(traceLat) + len(goLat)), Errors: errs,
		SpansExported: exp.spans.Load(), WorkerExports: sink.exports.Load(),
	}
	if rep.BaseP50us > 0 {
		rep.OverheadPct = 100 * (rep.P50us - rep.BaseP50us) / rep.BaseP50us
		rep.GoTracedOverheadPct = 100 * (rep.GoTracedP50us - rep.BaseP50us) / rep.BaseP50us
	}
	return rep, nil
}
