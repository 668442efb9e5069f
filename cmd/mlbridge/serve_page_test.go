package main

import (
	"bufio"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/statuspage"
)

// serve's status page takes the API's token through its login form; the session cookie it
// sets opens the page only, never the API.
func TestServeStatusPageAccess(t *testing.T) {
	p := echoPool(t)
	page := statuspage.New(statuspage.Options{Token: testToken}, mlbridge.Named("echo", p))
	srv := httptest.NewServer(serveHandler("echo", p, http.NotFoundHandler(), newAccess(testToken, nil, false), page))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, edit func(*http.Request)) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if edit != nil {
			edit(req)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return resp.StatusCode, string(b)
	}

	if code, body := get("/", nil); code != 401 || !strings.Contains(body, `action="login"`) {
		t.Fatalf("page without the token: %d\n%s", code, body)
	}
	if code, _ := get("/", func(r *http.Request) { r.Host = "attacker.test" }); code != 403 {
		t.Errorf("page by a rebound name: %d", code)
	}
	if code, _ := get("/", bearer(testToken)); code != 200 {
		t.Errorf("page with the bearer token: %d", code)
	}
	resp, err := client.PostForm(srv.URL+"/login", url.Values{"token": {testToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	if code, body := get("/", nil); code != 200 || !strings.Contains(body, "app.js") {
		t.Errorf("page after login: %d", code)
	}
	if code, _ := get("/v1/status", nil); code != 401 {
		t.Errorf("the page's session cookie opened the API: %d", code)
	}
	if code, _ := get("/v1/status", bearer(testToken)); code != 200 {
		t.Errorf("API with the token: %d", code)
	}
	resp, err = client.Post(srv.URL+"/", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST to the read-only page: %d", resp.StatusCode)
	}
}

// An open status page does not hold serve's graceful stop: Shutdown waits for active
// connections, and the page's event stream would otherwise keep one for its 30 s timeout.
func TestServeStopsWithAStatusPageOpen(t *testing.T) {
	t.Setenv(tokenEnv, "")
	addr, stop := startServe(t, "--workers", "1", "--addr", "127.0.0.1:0")
	resp, err := http.Get("http://" + addr + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "retry:") {
		t.Fatalf("stream began with %q, %v", line, err)
	}
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("serve stopped with %v", err)
	}
	// Far below Shutdown's 30 s timeout, far above a normal stop: not a speed check.
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("serve took %v to stop with a status page open", d)
	}
}
