package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

const testToken = "0123456789abcdef-test-token"

func echoPool(t *testing.T) *mlbridge.Pool {
	t.Helper()
	p, err := mlbridge.OpenPool(context.Background(), mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: testenv.EchoBridge, Python: testenv.Python(t)}, Size: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// request sends one request to srv; edit sets headers. It returns the status and the decoded
// JSON body.
func request(t *testing.T, srv *httptest.Server, method, path, body string, edit func(*http.Request)) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	if edit != nil {
		edit(req)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %q", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

// calls is how many times add ran on the pool (it fails no call here).
func calls(p *mlbridge.Pool) uint64 {
	for _, op := range p.Stats().Ops {
		if op.Op == "add" {
			return op.Count
		}
	}
	return 0
}

func TestServeAccess(t *testing.T) {
	p := echoPool(t)
	const add = "/v1/call/add"
	const args = `{"a": 40, "b": 2}`
	with := func(edits ...func(*http.Request)) func(*http.Request) {
		return func(r *http.Request) {
			for _, e := range edits {
				e(r)
			}
		}
	}
	header := func(k, v string) func(*http.Request) { return func(r *http.Request) { r.Header.Set(k, v) } }
	host := func(h string) func(*http.Request) { return func(r *http.Request) { r.Host = h } }

	t.Run("token", func(t *testing.T) {
		srv := httptest.NewServer(serveHandler("echo", p, http.NotFoundHandler(), newAccess(testToken, nil, false), nil))
		defer srv.Close()
		for _, tc := range []struct {
			name, method, path string
			edit               func(*http.Request)
			want               int
		}{
			{"call without a token", "POST", add, nil, 401},
			{"call with a wrong token", "POST", add, bearer(testToken + "x"), 401},
			{"call with a token of another scheme", "POST", add, header("Authorization", "Basic "+testToken), 401},
			{"status without a token", "GET", "/v1/status", nil, 401},
			{"node without a token", "GET", "/v1/node", nil, 401},
			{"metrics without a token", "GET", "/metrics", nil, 401},
			{"rebound name, metrics", "GET", "/metrics", with(bearer(testToken), host("attacker.test")), 403},
			{"text/plain call", "POST", add, with(bearer(testToken), header("Content-Type", "text/plain")), 415},
			{"form call", "POST", add, with(bearer(testToken), header("Content-Type", "application/x-www-form-urlencoded")), 415},
			{"cross-origin call", "POST", add, with(bearer(testToken), header("Origin", "http://evil.example")), 403},
			{"other port's origin", "POST", add, with(bearer(testToken), header("Origin", "http://127.0.0.1:1")), 403},
			{"https origin on http", "POST", add, with(bearer(testToken), header("Origin", "https://"+srv.Listener.Addr().String())), 403},
			{"rebound name", "POST", add, with(bearer(testToken), host("evil.example:80")), 403},
			{"rebound name, status", "GET", "/v1/status", with(bearer(testToken), host("attacker.test")), 403},
			{"health without a token", "GET", "/v1/healthz", host("lb.internal"), 200},
			{"status with the token", "GET", "/v1/status", bearer(testToken), 200},
			{"same-origin call with the token", "POST", add, with(bearer(testToken), header("Origin", srv.URL)), 200},
			{"call as localhost", "POST", add, with(bearer(testToken), host("localhost:7420"), header("Content-Type", "application/json; charset=utf-8")), 200},
		} {
			before := calls(p)
			status, body := request(t, srv, tc.method, tc.path, args, tc.edit)
			if status != tc.want {
				t.Errorf("%s: %d %v, want %d", tc.name, status, body, tc.want)
				continue
			}
			if status != 200 {
				if msg, _ := body["error"].(string); msg == "" {
					t.Errorf("%s: no error message in %v", tc.name, body)
				}
				if tc.path == add && calls(p) != before {
					t.Errorf("%s: refused, yet the op ran", tc.name)
				}
			} else if tc.path == add && body["result"] != 42.0 {
				t.Errorf("%s: %v", tc.name, body)
			}
		}
		resp, err := http.Post(srv.URL+add, "application/json", strings.NewReader(args))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("401 without WWW-Authenticate: %q", got)
		}
	})

	// Without a token (loopback) a web page still cannot run an op: the "simple" cross-origin
	// POST a browser sends without asking is refused by its Origin or its Content-Type.
	t.Run("no token", func(t *testing.T) {
		srv := httptest.NewServer(serveHandler("echo", p, http.NotFoundHandler(), newAccess("", nil, false), nil))
		defer srv.Close()
		before := calls(p)
		if status, body := request(t, srv, "POST", add, args, with(header("Content-Type", "text/plain"), header("Origin", "http://evil.example"))); status != 403 {
			t.Errorf("cross-origin text/plain: %d %v", status, body)
		}
		if status, body := request(t, srv, "POST", add, args, header("Content-Type", "text/plain")); status != 415 {
			t.Errorf("text/plain: %d %v", status, body)
		}
		if status, body := request(t, srv, "POST", add, args, host("rebind.evil.example")); status != 403 {
			t.Errorf("rebound name: %d %v", status, body)
		}
		if calls(p) != before {
			t.Error("a refused request ran the op")
		}
		if status, body := request(t, srv, "POST", add, args, nil); status != 200 || body["result"] != 42.0 {
			t.Errorf("a local JSON call: %d %v", status, body)
		}
	})
}

func TestServeRefusesToStart(t *testing.T) {
	t.Setenv(tokenEnv, "")
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	empty := filepath.Join(dir, "empty")
	os.WriteFile(short, []byte("secret\n"), 0o600)
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--addr", "0.0.0.0:0"}, "not a loopback address"},
		{[]string{"--addr", "[::]:0"}, "not a loopback address"},
		{[]string{"--token-file", short}, "shorter than 16"},
		{[]string{"--token-file", empty}, "is empty"},
		{[]string{"--token-file", filepath.Join(dir, "missing")}, "token file"},
		{[]string{"--tls-cert", "x.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"--tls-cert", filepath.Join(dir, "x.pem"), "--tls-key", filepath.Join(dir, "x.key")}, "TLS"},
	} {
		start := time.Now()
		_, err := run(t, append([]string{"serve", "--workers", "1"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %v: %v, want an error saying %q", tc.args, err, tc.want)
		}
		// Refused before any worker starts.
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("serve %v took %v to refuse", tc.args, d)
		}
	}
	_, err := run(t, "serve", "--addr", "0.0.0.0:0")
	if err == nil || !strings.Contains(err.Error(), tokenEnv) || !strings.Contains(err.Error(), "--token-file") {
		t.Errorf("the refusal does not say how to give a token: %v", err)
	}
}
