package statuspage_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/statuspage"
)

// TestBrowserFollowsAnAutoscalingPool: the page shows the workers an autoscaling pool adds
// under load and drops when idle (PoolStats.Slots changes), with its Autoscaling stat, and the
// pool stays "healthy" throughout (MinSize ready is healthy).
func TestBrowserFollowsAnAutoscalingPool(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("%s not found: install Debian's chromium to run the browser test", chromium)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
		Config:  mlbridge.Config{Bridge: testenv.EchoBridge, Python: testenv.Python(t), Logger: slog.New(slog.DiscardHandler), MaxInFlight: 1},
		MinSize: 1, MaxSize: 3, ScaleDownIdle: 300 * time.Millisecond, Preload: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	const token = "browser-test-token-0123456789abcdef"
	srv := httptest.NewServer(statuspage.New(statuspage.Options{Token: token, Interval: 50 * time.Millisecond}, mlbridge.Named("echo", p)))
	defer srv.Close()
	bctx, closeBrowser := browser(t, ctx)
	defer closeBrowser()
	if err := chromedp.Do(bctx,
		chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-state="ready"]`)),
	); err != nil {
		t.Fatalf("login: %v", err)
	}
	rows := func() int {
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('tr[data-slot][data-state="ready"]').length`))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	degraded := func() bool {
		d, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`!!document.querySelector('h2 .badge.bad')`))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	waitRows := func(want int) {
		for deadline := time.Now().Add(time.Minute); rows() != want; time.Sleep(20 * time.Millisecond) {
			if degraded() {
				t.Errorf("page shows the pool degraded while scaling:\n%s", pageText(bctx))
			}
			if time.Now().After(deadline) {
				t.Fatalf("page never showed %d ready workers:\n%s", want, pageText(bctx))
			}
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := p.Call(ctx, "sleep", map[string]any{"seconds": 0.05}); err != nil {
					t.Errorf("call: %v", err)
					return
				}
			}
		})
	}
	waitRows(3)
	text := pageText(bctx)
	if !strings.Contains(text, "Autoscaling") || !strings.Contains(text, "3 of 1–3") {
		t.Errorf("no Autoscaling stat at 3 of 1–3:\n%s", text)
	}
	close(stop)
	wg.Wait()
	waitRows(1)
	if text := pageText(bctx); !strings.Contains(text, "1 of 1–3") || !strings.Contains(text, "last down") {
		t.Errorf("Autoscaling stat after the load:\n%s", text)
	}
	sc := p.Stats().Scaling
	t.Logf("page followed the pool 1 → 3 → 1 workers: %d up, %d down, last %+v", sc.Ups, sc.Downs, sc.Last)
}
