package statuspage_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/statuspage"
)

// chromium is Debian's package (./scripts/bootstrap installs it).
const chromium = "/usr/bin/chromium"

// screenshotEnv names a file the test also writes its screenshot to (docs/status-page.png is
// made this way); the screenshot always goes to the test's artifact directory.
const screenshotEnv = "MLBRIDGE_STATUS_SCREENSHOT"

// TestBrowserShowsWorkersAndARestart loads the page in headless Chromium over a real pool,
// logs in with the token, kills a worker and watches the page show the slot restarting, then
// its new worker ready.
func TestBrowserShowsWorkersAndARestart(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("%s not found: install Debian's chromium (apt-get install chromium, or ./scripts/bootstrap) to run the browser test", chromium)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // generous: a functional check
	defer cancel()
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: testenv.EchoBridge, Python: testenv.Python(t), Logger: slog.New(slog.DiscardHandler)},
		Size:   2,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	exercise(t, ctx, p)

	const token = "browser-test-token-0123456789abcdef"
	page := statuspage.New(statuspage.Options{Token: token, Interval: 50 * time.Millisecond}, mlbridge.Named("echo", p))
	srv := httptest.NewServer(page) // 127.0.0.1
	defer srv.Close()

	bctx, closeBrowser := browser(t, ctx)
	defer closeBrowser() // before srv.Close, which waits for the page's event stream
	// Log in through the form, as a person would.
	if err := chromedp.Do(bctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Submit(chromedp.CSS("#token")),
	); err != nil {
		t.Fatalf("login: %v", err)
	}
	st := p.Stats()
	for _, w := range st.Workers {
		wctx, wcancel := context.WithTimeout(bctx, 30*time.Second)
		err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-pid="%d"][data-state="ready"]`, w.Pid))))
		wcancel()
		if err != nil {
			t.Fatalf("worker %d not shown: %v\npage:\n%s", w.Pid, err, pageText(bctx))
		}
	}
	t.Logf("page shows workers %v", pids(st.Workers))

	victim := st.Workers[0]
	for _, w := range st.Workers {
		if w.Served > victim.Served {
			victim = w // one that served: its death is a crash, replaced at once
		}
	}
	// Record every state the page renders for the victim's slot, so a brief one is not missed
	// between two polls.
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => {
		window.__slotStates = [];
		const snap = () => [...document.querySelectorAll('tr[data-slot="%d"]')].map(r => r.dataset.state + ":" + r.dataset.pid).join(",");
		new MutationObserver(() => {
			const s = snap();
			if (window.__slotStates[window.__slotStates.length - 1] !== s) window.__slotStates.push(s);
		}).observe(document.getElementById("bridges"), {childList: true, subtree: true});
		return true;
	})()`, victim.Slot))); err != nil {
		t.Fatal(err)
	}

	killed := time.Now()
	if err := syscall.Kill(victim.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var states []string
	var poolReady time.Time // when the pool itself had the new worker
	for {
		var err error
		if states, err = chromedp.Run(bctx, chromedp.Evaluate[[]string](`window.__slotStates`)); err != nil {
			t.Fatal(err)
		}
		if poolReady.IsZero() {
			for _, s := range p.Stats().Slots {
				if s.Slot == victim.Slot && s.Pid != 0 && s.Pid != victim.Pid {
					poolReady = time.Now()
				}
			}
		}
		if restarted(states, victim.Pid) {
			break
		}
		// The page must follow within 2 s (of the kill, or of the pool's new worker if
		// starting one took longer on a loaded machine).
		deadline := killed.Add(2 * time.Second)
		if !poolReady.IsZero() && poolReady.Add(2*time.Second).After(deadline) {
			deadline = poolReady.Add(2 * time.Second)
		}
		if time.Now().After(deadline) && (!poolReady.IsZero() || time.Since(killed) > time.Minute) {
			t.Fatalf("after killing pid %d the page showed %q, want the slot restarting, then a new ready worker", victim.Pid, states)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("slot %d after SIGKILL of pid %d, as rendered: %s (%s after the kill)", victim.Slot, victim.Pid, strings.Join(states, " → "), time.Since(killed).Round(time.Millisecond))

	// Read in one script run: the table is redrawn every interval, and a node found by one
	// protocol call can be gone by the next (chromedp.Text failed so, once in 14 runs).
	var reason string
	for deadline := time.Now().Add(30 * time.Second); reason == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		reason, err = chromedp.Run(bctx, chromedp.Evaluate[string](fmt.Sprintf(
			`(document.querySelector('tr[data-slot="%d"][data-state="ready"] td.reason') || {}).textContent || ""`, victim.Slot)))
		if err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(reason, "killed") {
		t.Errorf("the last restart reads %q, want the kill", reason)
	}
	screenshot(t, bctx)
}

// exercise makes calls for the tables: ops, errors, and some through a legacy API.
func exercise(t *testing.T, ctx context.Context, p *mlbridge.Pool) {
	legacy := mlbridge.WithAPI(ctx, "adapters.PythonPoolV2")
	for i := range 40 {
		c := ctx
		if i%4 == 0 {
			c = legacy
		}
		if _, err := p.Call(c, "add", map[string]any{"a": i, "b": 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Call(c, "echo", map[string]any{"value": i}); err != nil {
			t.Fatal(err)
		}
	}
	for _, msg := range []string{"model weights not loaded", "bad input shape (3, 224)"} {
		if _, err := p.Call(ctx, "fail", map[string]any{"type": "ValueError", "message": msg}); err == nil {
			t.Fatal("fail succeeded")
		}
	}
}

// restarted: the slot was shown without a ready worker (restarting, or its worker exited),
// and is now shown with a new ready one.
func restarted(states []string, oldPid int) bool {
	gone := -1
	for i, s := range states {
		if strings.Contains(s, "restarting:") || strings.Contains(s, "exited:") {
			gone = i
			break
		}
	}
	if gone < 0 || len(states) == 0 {
		return false
	}
	last := states[len(states)-1]
	return gone < len(states)-1 && strings.HasPrefix(last, "ready:") && !strings.Contains(last, fmt.Sprintf(":%d", oldPid)) && !strings.Contains(last, ",")
}

func browser(t *testing.T, ctx context.Context) (context.Context, context.CancelFunc) {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		// Without these Chromium reaches for the network, which this machine refuses.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	return bctx, func() { cancelBrowser(); cancelAlloc() }
}

func screenshot(t *testing.T, ctx context.Context) {
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	out := filepath.Join(t.ArtifactDir(), "status-page.png")
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(png))
	if extra := os.Getenv(screenshotEnv); extra != "" {
		if err := os.WriteFile(extra, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot also at %s", extra)
	}
}

// pageText is what the page shows, for failure messages.
func pageText(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

func pids(ws []mlbridge.WorkerStats) []int {
	out := make([]int, len(ws))
	for i, w := range ws {
		out[i] = w.Pid
	}
	return out
}
