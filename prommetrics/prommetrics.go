// Package prommetrics serves OpenTelemetry instruments (a pool's, and any others made on its
// MeterProvider) in the Prometheus exposition format, through OpenTelemetry's Prometheus
// exporter:
//
//	m, err := prommetrics.New()
//	pool, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{..., MeterProvider: m.MeterProvider()})
//	http.Handle("GET /metrics", m)
//
// Each Metrics has its own Prometheus registry: nothing is registered globally.
package prommetrics

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Metrics is a MeterProvider whose instruments an http.Handler serves to Prometheus.
type Metrics struct {
	provider *sdkmetric.MeterProvider
	handler  http.Handler
}

// New makes a MeterProvider read by a Prometheus exporter on a registry of its own.
func New() (*Metrics, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	return &Metrics{
		provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)),
		handler:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}, nil
}

// MeterProvider is what to give PoolConfig.MeterProvider (or otel.SetMeterProvider, for the
// pools of a Registry).
func (m *Metrics) MeterProvider() metric.MeterProvider { return m.provider }

// ServeHTTP answers a scrape: every instrument's current value, in the format the scraper
// asks for (text by default).
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }

// Shutdown stops the provider; later scrapes find nothing.
func (m *Metrics) Shutdown(ctx context.Context) error { return m.provider.Shutdown(ctx) }
