package prommetrics_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/mlbridge/mlbridge/prommetrics"
)

// Two Metrics do not share a registry (nothing global), and each serves what its provider holds.
func TestServesItsOwnProvider(t *testing.T) {
	a, err := prommetrics.New()
	if err != nil {
		t.Fatal(err)
	}
	b, err := prommetrics.New()
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.MeterProvider().Meter("test").Int64Counter("things", metric.WithUnit("{thing}"))
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 3, metric.WithAttributes(attribute.String("kind", "x")))

	scrape := func(m *prommetrics.Metrics) map[string]float64 {
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for name, f := range fams {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "kind" {
						out[name+"/"+l.GetValue()] = m.GetCounter().GetValue()
					}
				}
			}
		}
		return out
	}
	if got := scrape(a)["things_total/x"]; got != 3 {
		t.Errorf("things_total{kind=x} = %v, want 3", got)
	}
	if got := scrape(b); len(got) != 0 {
		t.Errorf("another Metrics serves %v", got)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
