package main

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/prommetrics"
)

// scrape GETs /metrics and parses it as Prometheus does (text format).
func scrape(t *testing.T, srv *httptest.Server, token string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// sample finds the metric of family name whose labels include want.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

// TestServeMetricsForPrometheus: after real calls through real workers, /metrics (behind the
// token like the rest) has the call-duration histogram per op and outcome, the workers and
// their RSS, and a worker killed with SIGKILL as an exit by crash.
func TestServeMetricsForPrometheus(t *testing.T) {
	metrics, err := prommetrics.New()
	if err != nil {
		t.Fatal(err)
	}
	p, err := mlbridge.OpenPool(context.Background(), mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: testenv.EchoBridge, Python: testenv.Python(t)}, Size: 2, Name: "echo",
		MeterProvider: metrics.MeterProvider(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	srv := httptest.NewServer(serveHandler("echo", p, metrics, newAccess(testToken, nil, false), nil))
	defer srv.Close()

	if status, body := request(t, srv, "GET", "/metrics", "", nil); status != 401 {
		t.Fatalf("/metrics without the token: %d %v", status, body)
	}
	for _, a := range []string{`{"a": 40, "b": 2}`, `{"a": 1, "b": 2}`, `{"a": 1}`} {
		request(t, srv, "POST", "/v1/call/add", a, bearer(testToken))
	}

	fams := scrape(t, srv, testToken)
	const duration = "mlbridge_pool_call_duration_seconds"
	if f := fams[duration]; f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("%s: %v", duration, f)
	}
	for outcome, n := range map[string]uint64{"ok": 2, "error": 1} {
		m := sample(fams, duration, map[string]string{"bridge": "echo", "op": "add", "outcome": outcome})
		if m == nil || m.GetHistogram().GetSampleCount() != n || m.GetHistogram().GetSampleSum() <= 0 {
			t.Errorf("%s{op=add,outcome=%s}: %v", duration, outcome, m)
			continue
		}
		var bounds []float64 // the text format adds le="+Inf"
		for _, b := range m.GetHistogram().GetBucket() {
			bounds = append(bounds, b.GetUpperBound())
		}
		if !slices.Equal(bounds, append(mlbridge.DurationBuckets(), math.Inf(1))) {
			t.Errorf("bucket bounds: %v", bounds)
		}
	}
	if m := sample(fams, "mlbridge_pool_workers", map[string]string{"bridge": "echo", "state": "ready"}); m.GetGauge().GetValue() != 2 {
		t.Errorf("ready workers: %v", m)
	}
	for _, slot := range []string{"0", "1"} {
		if m := sample(fams, "mlbridge_pool_worker_rss_bytes", map[string]string{"bridge": "echo", "slot": slot}); m.GetGauge().GetValue() < 1<<20 {
			t.Errorf("RSS of slot %s: %v", slot, m)
		}
	}
	for name, labels := range map[string]map[string]string{
		"mlbridge_pool_calls_in_flight":           {"bridge": "echo"},
		"mlbridge_pool_queue_depth":               {"bridge": "echo"},
		"mlbridge_pool_queue_oldest_wait_seconds": {"bridge": "echo"},
		"mlbridge_pool_workers_wedged":            {"bridge": "echo"},
		"mlbridge_pool_worker_exits_total":        {"bridge": "echo", "reason": "crash"},
	} {
		if m := sample(fams, name, labels); m == nil || m.GetGauge().GetValue()+m.GetCounter().GetValue() != 0 {
			t.Errorf("%s%v: %v, want 0", name, labels, m)
		}
	}
	if m := sample(fams, "mlbridge_pool_worker_starts_total", map[string]string{"bridge": "echo", "outcome": "ok"}); m.GetCounter().GetValue() != 2 {
		t.Errorf("starts: %v", m)
	}

	// A worker that has served (one killed before, within 2 s of its start, counts as a
	// start_failure, as the crash-loop breaker counts it).
	var victim int
	for _, w := range p.Stats().Workers {
		if w.Served > 0 {
			victim = w.Pid
		}
	}
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		fams = scrape(t, srv, testToken)
		exits := sample(fams, "mlbridge_pool_worker_exits_total", map[string]string{"bridge": "echo", "reason": "crash"})
		starts := sample(fams, "mlbridge_pool_worker_starts_total", map[string]string{"bridge": "echo", "outcome": "ok"})
		if exits.GetCounter().GetValue() == 1 && starts.GetCounter().GetValue() == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after kill -9: exits %v, starts %v", exits, starts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if m := sample(fams, "mlbridge_pool_worker_exits_total", map[string]string{"reason": "shutdown"}); m.GetCounter().GetValue() != 0 {
		t.Errorf("exits by shutdown: %v", m)
	}
}
