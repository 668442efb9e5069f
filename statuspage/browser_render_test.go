package statuspage_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/statuspage"
)

// renderedOp is one row of the page's ops table, as text.
type renderedOp struct {
	Calls, Failed, Rate, P50, P99 string
}

// renderedError is one row of the page's recent errors table, as text.
type renderedError struct {
	Op, Category, Type, Msg string
}

// rendered is what the page shows of a bridge, read from the DOM in one script run (the
// section is redrawn every interval).
type rendered struct {
	Ops    map[string]renderedOp
	Errors []renderedError
	Legacy string  // the legacy-share meter's text
	Meter  float64 // the legacy-share meter's value
	Async  string  // the async-handlers meter's text
	APIs   map[string]string
}

const readRendered = `(() => {
	const sec = document.querySelector('section[data-bridge="echo"]');
	const out = {Ops: {}, Errors: [], Legacy: "", Meter: -1, Async: "", APIs: {}};
	if (!sec) return out;
	const txt = (row, sel) => ((row.querySelector(sel) || {}).textContent || "");
	for (const r of sec.querySelectorAll("table.ops tbody tr[data-op]")) {
		out.Ops[r.dataset.op] = {Calls: txt(r, "td.calls"), Failed: txt(r, "td.failed"), Rate: txt(r, "td.rate"), P50: txt(r, "td.p50"), P99: txt(r, "td.p99")};
	}
	for (const r of sec.querySelectorAll("table.errors tbody tr")) {
		out.Errors.push({Op: txt(r, "td.op"), Category: txt(r, "td.category"), Type: txt(r, "td.type"), Msg: txt(r, "td.msg")});
	}
	const legacy = sec.querySelector('[data-metric="legacy-share"]');
	if (legacy) { out.Legacy = txt(legacy, ".value"); out.Meter = legacy.querySelector("meter").value; }
	const async = sec.querySelector('[data-metric="async-share"]');
	if (async) out.Async = txt(async, ".value");
	for (const li of sec.querySelectorAll("li[data-api]")) out.APIs[li.dataset.api] = li.textContent;
	return out;
})()`

// TestBrowserRendersOpsErrorsAndMigration drives real calls through a real pool (successes,
// typed Python failures, a Go-side deadline, a quarter of one op through a legacy API marked
// with mlbridge.WithAPI), then reads the page in headless Chromium: each op's calls, errors,
// error rate and p50/p99 (checked against the latencies the calls were made to have), the
// recent errors newest first with their category, Python exception class and text, and the
// migration figures (legacy share of calls, the legacy API's count, the async-handler share).
func TestBrowserRendersOpsErrorsAndMigration(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("%s not found: install Debian's chromium to run the browser test", chromium)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: testenv.EchoBridge, Python: testenv.Python(t), Logger: slog.New(slog.DiscardHandler)},
		Size:   2,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	// sleep: 30 calls of 30 ms and one of 300 ms, at once: p50 ≥ 30 ms, p99 ≥ 300 ms.
	var wg sync.WaitGroup
	for i := range 31 {
		secs := 0.03
		if i == 30 {
			secs = 0.3
		}
		wg.Go(func() {
			if _, err := p.Call(ctx, "sleep", map[string]any{"seconds": secs}); err != nil {
				t.Errorf("sleep: %v", err)
			}
		})
	}
	wg.Wait()
	// add: 40 calls, every 4th through the legacy API.
	const legacyAPI = "adapters.PythonPoolV2"
	for i := range 40 {
		c := ctx
		if i%4 == 0 {
			c = mlbridge.WithAPI(ctx, legacyAPI)
		}
		if _, err := p.Call(c, "add", map[string]any{"a": i, "b": 1}); err != nil {
			t.Fatal(err)
		}
	}
	// sleep_echo: 3 successes and 1 deadline: 25% failed.
	for range 3 {
		if _, err := p.Call(ctx, "sleep_echo", map[string]any{"value": 1}); err != nil {
			t.Fatal(err)
		}
	}
	// fail: typed Python errors, oldest first.
	type wantErr struct{ op, category, typ, msg string }
	var want []wantErr
	for _, f := range []struct{ typ, msg string }{{"ValueError", "model weights not loaded"}, {"RuntimeError", "bad input shape (3, 224)"}} {
		_, err := p.Call(ctx, "fail", map[string]any{"type": f.typ, "message": f.msg})
		var re *mlbridge.RemoteError
		if !errors.As(err, &re) || re.Type != f.typ {
			t.Fatalf("fail %s: %v, want a RemoteError of type %s", f.typ, err, f.typ)
		}
		want = append(want, wantErr{"fail", re.Category, f.typ, f.msg})
	}
	dctx, dcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = p.Call(dctx, "sleep_echo", map[string]any{"value": 1, "seconds": 2})
	dcancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("sleep_echo past its deadline: %v", err)
	}
	// Whichever side noticed the deadline first: the host (no Python type) or the worker.
	deadlineType := "—"
	if re := (*mlbridge.RemoteError)(nil); errors.As(err, &re) {
		deadlineType = re.Type
	}
	want = append(want, wantErr{"sleep_echo", "timeout", deadlineType, "deadline"})
	const total, legacy = 31 + 40 + 3 + 2 + 1, 10

	const token = "browser-test-token-0123456789abcdef"
	srv := httptest.NewServer(statuspage.New(statuspage.Options{Token: token, Interval: 50 * time.Millisecond}, mlbridge.Named("echo", p)))
	defer srv.Close()
	bctx, closeBrowser := browser(t, ctx)
	defer closeBrowser()
	if err := chromedp.Do(bctx,
		chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS(`table.ops tr[data-op="sleep"]`)),
	); err != nil {
		t.Fatalf("login: %v\npage:\n%s", err, pageText(bctx))
	}
	var got rendered
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if got, err = chromedp.Run(bctx, chromedp.Evaluate[rendered](readRendered)); err != nil {
			t.Fatal(err)
		}
		if len(got.Errors) == len(want) && got.Ops["sleep_echo"].Calls == "4" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page never showed every call: %+v\npage:\n%s", got, pageText(bctx))
		}
	}
	t.Logf("page shows ops %+v", got.Ops)

	// Ops: counts, error rates, and latencies that fit what the calls took.
	for op, w := range map[string]renderedOp{
		"sleep":      {Calls: "31", Failed: "0", Rate: "0.0%"},
		"add":        {Calls: "40", Failed: "0", Rate: "0.0%"},
		"sleep_echo": {Calls: "4", Failed: "1", Rate: "25.0%"},
		"fail":       {Calls: "2", Failed: "2", Rate: "100.0%"},
	} {
		g, ok := got.Ops[op]
		if !ok {
			t.Errorf("op %s not shown", op)
			continue
		}
		if g.Calls != w.Calls || g.Failed != w.Failed || g.Rate != w.Rate {
			t.Errorf("op %s shows %s calls, %s errors, rate %s; want %s, %s, %s", op, g.Calls, g.Failed, g.Rate, w.Calls, w.Failed, w.Rate)
		}
		p50, p99 := parseShown(t, g.P50), parseShown(t, g.P99)
		if p50 <= 0 || p99 < p50 {
			t.Errorf("op %s shows p50 %q, p99 %q", op, g.P50, g.P99)
		}
	}
	// The histogram is within 3.1% of what it measured: 29 ms and 290 ms leave room for it.
	if p50 := parseShown(t, got.Ops["sleep"].P50); p50 < 29*time.Millisecond || p50 >= 290*time.Millisecond {
		t.Errorf("sleep p50 shown as %q: 30 of its 31 calls slept 30 ms", got.Ops["sleep"].P50)
	}
	if p99 := parseShown(t, got.Ops["sleep"].P99); p99 < 290*time.Millisecond {
		t.Errorf("sleep p99 shown as %q: one of its 31 calls slept 300 ms", got.Ops["sleep"].P99)
	}

	// Recent errors: newest first, each with its category, type and text.
	for i, w := range want {
		g := got.Errors[len(want)-1-i]
		if g.Op != w.op || g.Category != w.category || g.Type != w.typ || !strings.Contains(g.Msg, w.msg) {
			t.Errorf("recent error %d shows %+v, want op %s, category %s, type %s, text with %q", len(want)-1-i, g, w.op, w.category, w.typ, w.msg)
		}
	}
	t.Logf("page shows recent errors %+v", got.Errors)

	// Migration: the legacy API's share and count, and the async-handler share the pool reports.
	wantLegacy := fmt.Sprintf("%.1f%% (%d of %d)", 100*float64(legacy)/total, legacy, total)
	if got.Legacy != wantLegacy || got.Meter < 0.12 || got.Meter > 0.14 {
		t.Errorf("legacy share shows %q (meter %.3f), want %q", got.Legacy, got.Meter, wantLegacy)
	}
	if api := got.APIs[legacyAPI]; !strings.Contains(api, fmt.Sprintf(": %d calls", legacy)) {
		t.Errorf("legacy API listed as %q, want %d calls (all APIs: %v)", api, legacy, got.APIs)
	}
	share := p.Stats().Handlers.AsyncShare
	if wantAsync := fmt.Sprintf("%.1f%% of ops", 100*share); share <= 0 || share >= 1 || got.Async != wantAsync {
		t.Errorf("async handlers show %q, want %q (the echo bridge has sync and async handlers)", got.Async, wantAsync)
	}
	t.Logf("page shows migration: legacy %s (meter %.3f), APIs %v, async handlers %s", got.Legacy, got.Meter, got.APIs, got.Async)
	screenshot(t, bctx)
}

// parseShown reads a latency as the page formats it ("850 µs", "31.2 ms", "300 ms").
func parseShown(t *testing.T, s string) time.Duration {
	t.Helper()
	num, unit, ok := strings.Cut(s, " ")
	v, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil {
		t.Errorf("latency %q is not a number and a unit", s)
		return 0
	}
	switch unit {
	case "µs":
		return time.Duration(v * float64(time.Microsecond))
	case "ms":
		return time.Duration(v * float64(time.Millisecond))
	}
	t.Errorf("latency %q has unit %q", s, unit)
	return 0
}
