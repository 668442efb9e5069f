package statuspage

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Two handlers (two nodes on one machine: browsers keep cookies per host, not per port) use
// cookies of their own names, so one's login does not log the other out.
func TestSessionCookieNamesAreTheHandlers(t *testing.T) {
	a, b := newHandler(Options{Token: testToken}, fakeStatus), newHandler(Options{Token: testToken}, fakeStatus)
	if a.cookieName == b.cookieName || !strings.HasPrefix(a.cookieName, "mlbridge_status_") {
		t.Fatalf("cookie names %q and %q", a.cookieName, b.cookieName)
	}
	// GET /logout ends the session too.
	w := do(a, "GET", "/logout", nil)
	if cs := w.Result().Cookies(); len(cs) != 1 || cs[0].Name != a.cookieName || cs[0].MaxAge >= 0 {
		t.Fatalf("GET /logout cookies: %v", cs)
	}
}

// A reverse proxy on this host connects from loopback with a loopback Host: without a token,
// what it forwards is refused.
func TestProxiedRequestsNeedAToken(t *testing.T) {
	h := newHandler(Options{}, fakeStatus)
	for _, hdr := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip"} {
		if w := do(h, "GET", "/", nil, func(r *http.Request) { r.Header.Set(hdr, "203.0.113.9") }); w.Code != http.StatusForbidden {
			t.Errorf("%s without a token: %d, want 403", hdr, w.Code)
		}
	}
	if w := do(h, "GET", "/", nil); w.Code != 200 {
		t.Errorf("a direct loopback client: %d", w.Code)
	}
}

// An open stream ends when its session expires: the page then logs in again.
func TestStreamEndsWithItsSession(t *testing.T) {
	var skew atomic.Int64
	h := newHandler(Options{Token: testToken, Interval: 10 * time.Millisecond}, fakeStatus)
	h.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()
	form := url.Values{"token": {testToken}}.Encode()
	noRedirect := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Post(srv.URL+"/login", "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("login cookies: %v", cookies)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/events", nil)
	req.AddCookie(cookies[0])
	stream, err := noRedirect.Do(req)
	if err != nil || stream.StatusCode != 200 {
		t.Fatalf("stream: %v %v", err, stream)
	}
	defer stream.Body.Close()
	sc := bufio.NewScanner(stream.Body)
	sc.Buffer(nil, 1<<20)
	events := 0
	for events < 2 && sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			events++
		}
	}
	skew.Store(int64(sessionTTL + time.Minute))
	for sc.Scan() { // ends when the handler ends the stream; the client's timeout would fail it
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("the stream did not end with its session: %v", err)
	}
}
