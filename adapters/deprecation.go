package adapters

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/store"
)

// Phase is where the legacy API stands on the deprecation timeline; each phase is a
// deployable step, and moving back is the rollback.
type Phase string

const (
	// PhaseOff only counts legacy calls (the OpenTelemetry counter is always on).
	PhaseOff Phase = "off"
	// PhaseLog logs each legacy API once per process, at Info (the default).
	PhaseLog Phase = "log"
	// PhaseWarn logs every legacy call at Warn.
	PhaseWarn Phase = "warn"
	// PhaseError makes legacy calls fail with ErrDeprecated: the hard end of the timeline,
	// for finding the last callers in a test or staging environment.
	PhaseError Phase = "error"
)

// ErrDeprecated: a legacy call was refused because the deprecation phase is "error".
var ErrDeprecated = errors.New("mlbridge: legacy API call refused (deprecation phase \"error\")")

// PhaseEnv is the environment variable that sets the phase when Options.Phase is empty.
const PhaseEnv = "MLBRIDGE_DEPRECATION_PHASE"

// CounterName is the OpenTelemetry counter of legacy calls; attributes api (the legacy type
// or function), op (the bridge op it became) and replacement.
const CounterName = "mlbridge.legacy.calls"

func resolvePhase(p Phase) (Phase, error) {
	if p == "" {
		p = Phase(os.Getenv(PhaseEnv))
	}
	switch p {
	case "":
		return PhaseLog, nil
	case PhaseOff, PhaseLog, PhaseWarn, PhaseError:
		return p, nil
	}
	return "", fmt.Errorf("%w: deprecation phase %q (have: off, log, warn, error)", mlbridge.ErrInvalidArgument, p)
}

// telemetry counts and reports the calls of one legacy API.
type telemetry struct {
	api, replacement string
	phase            Phase
	log              *slog.Logger
	counter          metric.Int64Counter
	attrs            map[string]metric.AddOption // per op, built once: no allocation per call
	mu               sync.Mutex
	logged           map[string]bool
}

func newTelemetry(api, replacement string, phase Phase, log *slog.Logger) *telemetry {
	if log == nil {
		log = slog.Default()
	}
	// The global MeterProvider: a no-op until the application installs one.
	counter, _ := otel.Meter("github.com/mlbridge/mlbridge/adapters").Int64Counter(CounterName,
		metric.WithDescription("calls through the deprecated legacy API"))
	return &telemetry{api: api, replacement: replacement, phase: phase, log: log, counter: counter,
		attrs: map[string]metric.AddOption{}, logged: map[string]bool{}}
}

// record counts one call of op and applies the phase; the ctx it returns attributes the
// call to the legacy API in the pool's own statistics (PoolStats.ByAPI).
func (t *telemetry) record(ctx context.Context, op string) (context.Context, error) {
	t.mu.Lock()
	opt, ok := t.attrs[op]
	if !ok {
		opt = metric.WithAttributeSet(attribute.NewSet(attribute.String("api", t.api),
			attribute.String("op", op), attribute.String("replacement", t.replacement)))
		t.attrs[op] = opt
	}
	first := !t.logged[op]
	t.logged[op] = true
	t.mu.Unlock()
	t.counter.Add(ctx, 1, opt)
	switch t.phase {
	case PhaseLog:
		if first {
			t.log.Info("mlbridge: deprecated API in use", "api", t.api, "op", op, "replacement", t.replacement, "migrate", migration[t.api])
		}
	case PhaseWarn:
		t.log.Warn("mlbridge: deprecated API in use", "api", t.api, "op", op, "replacement", t.replacement, "migrate", migration[t.api])
	case PhaseError:
		return ctx, fmt.Errorf("%w: %s (%s); use %s: %s", ErrDeprecated, t.api, op, t.replacement, migration[t.api])
	}
	return mlbridge.WithAPI(ctx, t.api), nil
}

// countingAdapter is the adapter the legacy types' Client runs on: every call made through a
// legacy object — before or after `go fix` rewrote it to p.Client.X — is counted, until the
// object itself is replaced by one from the registry.
type countingAdapter struct {
	mlbridge.Adapter
	t *telemetry
}

// Unwrap is the adapter counted: mlbridge.TraceOperation traces a legacy type's operations with
// its tracer (a pool's TracerProvider and content switch), as it would the pool's own.
func (c countingAdapter) Unwrap() mlbridge.Adapter { return c.Adapter }

func (c countingAdapter) Create(ctx context.Context, d store.Definition) (store.Definition, error) {
	ctx, err := c.t.record(ctx, "create:"+d.Kind)
	if err != nil {
		return d, err
	}
	return c.Adapter.Create(ctx, d)
}

func (c countingAdapter) Execute(ctx context.Context, id string, inputs map[string]any) (mlbridge.Result, error) {
	ctx, err := c.t.record(ctx, "execute")
	if err != nil {
		return mlbridge.Result{}, err
	}
	return c.Adapter.Execute(ctx, id, inputs)
}

func (c countingAdapter) Describe(ctx context.Context, id string) (map[string]any, error) {
	ctx, err := c.t.record(ctx, "describe")
	if err != nil {
		return nil, err
	}
	return c.Adapter.Describe(ctx, id)
}

func (c countingAdapter) Call(ctx context.Context, op string, args any, opts ...mlbridge.CallOption) (mlbridge.Result, error) {
	ctx, err := c.t.record(ctx, op)
	if err != nil {
		return mlbridge.Result{}, err
	}
	return c.Adapter.Call(ctx, op, args, opts...)
}

func (c countingAdapter) Submit(ctx context.Context, op string, args any, opts ...mlbridge.CallOption) *mlbridge.Future {
	ctx, err := c.t.record(ctx, op)
	if err != nil {
		return mlbridge.FailedFuture(err)
	}
	return c.Adapter.Submit(ctx, op, args, opts...)
}

func (c countingAdapter) Stream(ctx context.Context, op string, args any, opts ...mlbridge.CallOption) iter.Seq2[mlbridge.Result, error] {
	ctx, err := c.t.record(ctx, op)
	if err != nil {
		return func(yield func(mlbridge.Result, error) bool) { yield(mlbridge.Result{}, err) }
	}
	return c.Adapter.Stream(ctx, op, args, opts...)
}

func (c countingAdapter) Delete(ctx context.Context, id string) error {
	ctx, err := c.t.record(ctx, "delete")
	if err != nil {
		return err
	}
	return c.Adapter.Delete(ctx, id)
}
