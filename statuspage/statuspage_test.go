package statuspage

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
)

const testToken = "0123456789abcdef-status-page-token"

func fakeStatus() mlbridge.NodeStatus {
	return mlbridge.NodeStatus{Time: time.Now().UTC(), Bridges: map[string]mlbridge.PoolStats{
		"echo": {Size: 1, Ready: 1, Workers: []mlbridge.WorkerStats{{Slot: 0, Pid: 4242, State: "ready"}}},
	}}
}

// do serves one request from a loopback client, as httptest.NewRequest does not.
func do(h http.Handler, method, target string, body io.Reader, mutate ...func(*http.Request)) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, body)
	r.RemoteAddr = "127.0.0.1:50000"
	r.Host = "127.0.0.1:7420"
	for _, m := range mutate {
		m(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestMountedUnderAPrefix(t *testing.T) {
	page := newHandler(Options{Prefix: "/mlbridge/"}, fakeStatus)
	mux := http.NewServeMux()
	mux.Handle("/mlbridge/", page)
	mux.Handle("/mlbridge", page)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the team's own page") })

	w := do(mux, "GET", "/mlbridge/", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `src="app.js"`) || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /mlbridge/: %d %q\n%s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	if w.Header().Get("Content-Security-Policy") == "" {
		t.Error("no Content-Security-Policy")
	}
	if w := do(mux, "GET", "/mlbridge", nil); w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/mlbridge/" {
		t.Errorf("GET /mlbridge: %d to %q, want a redirect to /mlbridge/", w.Code, w.Header().Get("Location"))
	}
	for path, ctype := range map[string]string{"/mlbridge/app.js": "text/javascript", "/mlbridge/style.css": "text/css", "/mlbridge/events": "text/event-stream"} {
		r := httptest.NewRequest("GET", path, nil)
		r.RemoteAddr, r.Host = "127.0.0.1:1", "localhost"
		w := httptest.NewRecorder()
		if path == "/mlbridge/events" {
			r.Method = "HEAD" // headers only: the stream itself is TestEventsStreamSnapshots'
		}
		mux.ServeHTTP(w, r)
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), ctype) {
			t.Errorf("%s: %d %q, want %s", path, w.Code, w.Header().Get("Content-Type"), ctype)
		}
	}
	if w := do(mux, "GET", "/mlbridge/nothing", nil); w.Code != 404 {
		t.Errorf("unknown path under the prefix: %d", w.Code)
	}
	if w := do(page, "GET", "/elsewhere", nil); w.Code != 404 {
		t.Errorf("a path outside the prefix, handed to the page: %d", w.Code)
	}
	if w := do(mux, "GET", "/", nil); w.Body.String() != "the team's own page" {
		t.Errorf("the page took over /: %q", w.Body)
	}
}

func TestBadPrefixPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Prefix without slashes accepted")
		}
	}()
	New(Options{Prefix: "mlbridge"})
}

func TestReadOnlyRefusesEveryOtherMethod(t *testing.T) {
	ro := newHandler(Options{}, fakeStatus)
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		for _, path := range []string{"/", "/events", "/app.js", "/actions/recycle"} {
			w := do(ro, m, path, strings.NewReader("{}"))
			if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" || !strings.Contains(w.Body.String(), "read-only") {
				t.Errorf("read-only %s %s: %d %q", m, path, w.Code, w.Body)
			}
		}
	}
	// Not read-only: there is no action yet, and one would still need the token.
	rw := newHandler(Options{ReadWrite: true, Token: testToken}, fakeStatus)
	if w := do(rw, "POST", "/actions/recycle", nil); w.Code != http.StatusUnauthorized {
		t.Errorf("read-write action without the token: %d", w.Code)
	}
	if w := do(rw, "POST", "/actions/recycle", nil, bearer(testToken)); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "none yet") {
		t.Errorf("read-write action: %d %q", w.Code, w.Body)
	}
}

func TestLoopbackOnlyWithoutAToken(t *testing.T) {
	h := newHandler(Options{}, fakeStatus)
	cases := []struct {
		name         string
		remote, host string
		want         int
	}{
		{"loopback", "127.0.0.1:1", "127.0.0.1:7420", 200},
		{"loopback v6, localhost", "[::1]:1", "localhost:7420", 200},
		{"remote client", "10.1.2.3:1", "127.0.0.1:7420", 403},
		{"rebound name", "127.0.0.1:1", "attacker.test:7420", 403},
	}
	for _, c := range cases {
		w := do(h, "GET", "/", nil, func(r *http.Request) { r.RemoteAddr, r.Host = c.remote, c.host })
		if w.Code != c.want {
			t.Errorf("%s: %d, want %d", c.name, w.Code, c.want)
		}
	}
	if w := do(h, "GET", "/events", nil, func(r *http.Request) { r.Header.Set("Origin", "http://attacker.test") }); w.Code != 403 {
		t.Errorf("cross-origin stream: %d", w.Code)
	}
}

func bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func TestTokenLoginCookieAndLogs(t *testing.T) {
	var logs bytes.Buffer
	h := newHandler(Options{Prefix: "/mlbridge/", Token: testToken, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, fakeStatus)
	// Exposed: any client with the token, none without.
	remote := func(r *http.Request) { r.RemoteAddr, r.Host = "10.1.2.3:1", "node.example:7420" }

	for _, path := range []string{"/mlbridge/", "/mlbridge/events"} {
		if w := do(h, "GET", path, nil, remote); w.Code != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d", path, w.Code)
		}
	}
	if w := do(h, "GET", "/mlbridge/", nil, remote); !strings.Contains(w.Body.String(), `action="login"`) {
		t.Errorf("no login form on 401:\n%s", w.Body)
	}
	if w := do(h, "GET", "/mlbridge/", nil, remote, bearer(testToken)); w.Code != 200 {
		t.Errorf("bearer token: %d", w.Code)
	}
	if w := do(h, "GET", "/mlbridge/?token="+testToken, nil, remote); w.Code != http.StatusBadRequest {
		t.Errorf("token in the URL: %d, want 400", w.Code)
	}

	login := func(tok string, mutate ...func(*http.Request)) *httptest.ResponseRecorder {
		form := url.Values{"token": {tok}}.Encode()
		return do(h, "POST", "/mlbridge/login", strings.NewReader(form), append([]func(*http.Request){remote, func(r *http.Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}}, mutate...)...)
	}
	if w := login("wrong-token-wrong-token"); w.Code != http.StatusUnauthorized || len(w.Result().Cookies()) != 0 {
		t.Errorf("wrong token: %d, cookies %v", w.Code, w.Result().Cookies())
	}
	if w := login(testToken, func(r *http.Request) { r.Header.Set("Origin", "https://attacker.test") }); w.Code != 403 {
		t.Errorf("cross-site login: %d", w.Code)
	}
	w := login(testToken, func(r *http.Request) { r.Header.Set("Origin", "https://node.example:7420") })
	cookies := w.Result().Cookies()
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/mlbridge/" || len(cookies) != 1 {
		t.Fatalf("login: %d to %q, cookies %v", w.Code, w.Header().Get("Location"), cookies)
	}
	c := cookies[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/mlbridge/" || strings.Contains(c.Value, testToken) {
		t.Errorf("session cookie: %+v", c)
	}
	withCookie := func(c *http.Cookie) func(*http.Request) { return func(r *http.Request) { r.AddCookie(c) } }
	if w := do(h, "HEAD", "/mlbridge/events", nil, remote, withCookie(c)); w.Code != 200 {
		t.Errorf("stream with the session cookie: %d", w.Code)
	}
	forged := *c
	exp, _, _ := strings.Cut(c.Value, ".")
	forged.Value = exp + "." + strings.Repeat("0", 64) // a valid expiry, not signed by h
	if w := do(h, "GET", "/mlbridge/", nil, remote, withCookie(&forged)); w.Code != http.StatusUnauthorized {
		t.Errorf("forged cookie: %d", w.Code)
	}
	h.now = func() time.Time { return time.Now().Add(sessionTTL + time.Minute) }
	if w := do(h, "GET", "/mlbridge/", nil, remote, withCookie(c)); w.Code != http.StatusUnauthorized {
		t.Errorf("expired session: %d", w.Code)
	}
	if other := newHandler(Options{Prefix: "/mlbridge/", Token: testToken}, fakeStatus); do(other, "GET", "/mlbridge/", nil, remote, withCookie(c)).Code != http.StatusUnauthorized {
		t.Error("a session outlived its handler (a restart must log everyone out)")
	}
	if w := do(h, "POST", "/mlbridge/logout", nil, remote); len(w.Result().Cookies()) != 1 || w.Result().Cookies()[0].MaxAge >= 0 {
		t.Errorf("logout did not clear the cookie: %v", w.Result().Cookies())
	}

	if !strings.Contains(logs.String(), "login refused") || !strings.Contains(logs.String(), `msg="mlbridge status page: login"`) {
		t.Errorf("logins not logged:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), testToken) {
		t.Errorf("the token is in the logs:\n%s", logs.String())
	}
}

func TestEventsStreamSnapshots(t *testing.T) {
	var served atomic.Int64
	status := func() mlbridge.NodeStatus { served.Add(1); return fakeStatus() }
	if h := newHandler(Options{}, status); h.opts.Interval != time.Second {
		t.Errorf("default interval %v, want 1s", h.opts.Interval)
	}
	if h := newHandler(Options{Interval: time.Minute}, status); h.opts.Interval != time.Second {
		t.Errorf("interval %v: the page promises at least one snapshot a second", h.opts.Interval)
	}
	page := newHandler(Options{Interval: 10 * time.Millisecond}, status)
	srv := httptest.NewServer(page)
	defer srv.Close()
	client := &http.Client{Timeout: 30 * time.Second} // generous: the check is the count, not the speed
	resp, err := client.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	events := 0
	for events < 3 && sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var st mlbridge.NodeStatus
		if err := json.Unmarshal([]byte(data), &st); err != nil || st.Bridges["echo"].Workers[0].Pid != 4242 {
			t.Fatalf("event %q: %v", data, err)
		}
		events++
	}
	if events < 3 {
		t.Fatalf("%d events before the stream ended: %v", events, sc.Err())
	}
	// Close ends the stream (http.Server.Shutdown would wait for it otherwise).
	page.Close()
	for sc.Scan() {
	}
	if resp, err := client.Get(srv.URL + "/events"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a stream after Close: %v %v", resp.StatusCode, err)
	}
}

func TestAssetsUnder100KB(t *testing.T) {
	total := 0
	err := fs.WalkDir(assetFS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assetFS, path)
		total += len(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("embedded assets: %d bytes", total)
	if total >= 100*1024 {
		t.Fatalf("embedded assets are %d bytes, over the 100 KB budget", total)
	}
}
