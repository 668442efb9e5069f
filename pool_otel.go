package mlbridge

import (
	"context"
	"errors"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
)

// The migration instruments of a pool. They are observable: the SDK reads the pool's own
// counters (the ones Stats reports) when it collects, so the call path pays nothing for them.
// The service instruments (latency, load, workers) are in pool_instruments.go.
const (
	MetricCalls       = "mlbridge.pool.calls"          // {bridge, mode, error}
	MetricAPICalls    = "mlbridge.pool.api_calls"      // {bridge, api, error}
	MetricKindCalls   = "mlbridge.handler.calls"       // {bridge, kind, error}
	MetricAsyncShare  = "mlbridge.handler.async_share" // {bridge}
	meterInstrumentor = "github.com/mlbridge/mlbridge"
)

// registerMetrics installs the pool's observable instruments on cfg.MeterProvider (default:
// the global one, a no-op until the application installs an SDK): the migration metrics below
// and the service ones (pool_instruments.go). The registration ends with the pool.
func (p *Pool) registerMetrics() (metric.Registration, error) {
	m := p.meter()
	migration, err := p.registerMigrationMetrics(m)
	if err != nil {
		return nil, err
	}
	service, err := p.registerServiceMetrics(m)
	if err != nil {
		_ = migration.Unregister()
		return nil, err
	}
	return registrations{list: []metric.Registration{migration, service}}, nil
}

// registrations end together.
type registrations struct {
	embedded.Registration
	list []metric.Registration
}

func (rs registrations) Unregister() error {
	var errs []error
	for _, r := range rs.list {
		errs = append(errs, r.Unregister())
	}
	return errors.Join(errs...)
}

func (p *Pool) registerMigrationMetrics(m metric.Meter) (metric.Registration, error) {
	calls, err := m.Int64ObservableCounter(MetricCalls, metric.WithDescription("finished calls per Go call mode (call, submit, stream)"))
	if err != nil {
		return nil, err
	}
	apiCalls, err := m.Int64ObservableCounter(MetricAPICalls, metric.WithDescription("finished calls per Go API (current, or a deprecated one)"))
	if err != nil {
		return nil, err
	}
	kindCalls, err := m.Int64ObservableCounter(MetricKindCalls, metric.WithDescription("calls per Python handler kind (sync, async, sync_gen, async_gen)"))
	if err != nil {
		return nil, err
	}
	share, err := m.Float64ObservableGauge(MetricAsyncShare, metric.WithDescription("share of the bridge's ops served by async implementations, 0..1"))
	if err != nil {
		return nil, err
	}
	bridge := attribute.String("bridge", p.cfg.Name)
	// observe reports one CallCounts as two series: error=false and error=true.
	observe := func(o metric.Observer, c metric.Int64Observable, counts CallCounts, key, value string) {
		for _, failed := range []bool{false, true} {
			n := counts.Calls - counts.Errors
			if failed {
				n = counts.Errors
			}
			o.ObserveInt64(c, int64(n), metric.WithAttributes(bridge, attribute.String(key, value),
				attribute.String("error", strconv.FormatBool(failed))))
		}
	}
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := p.Stats()
		for mode, c := range st.ByMode {
			observe(o, calls, c, "mode", string(mode))
		}
		for api, c := range st.ByAPI {
			observe(o, apiCalls, c, "api", api)
		}
		for kind, c := range st.Handlers.Kinds {
			observe(o, kindCalls, c, "kind", string(kind))
		}
		o.ObserveFloat64(share, st.Handlers.AsyncShare, metric.WithAttributes(bridge))
		return nil
	}, calls, apiCalls, kindCalls, share)
}
