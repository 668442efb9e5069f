package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every command that reads a node takes host:port, http:// and https:// URLs alike.
func TestNodeURL(t *testing.T) {
	for _, c := range []struct{ addr, endpoint, want string }{
		{"127.0.0.1:7420", "/v1/status", "http://127.0.0.1:7420/v1/status"},
		{"http://127.0.0.1:7420", "/v1/status", "http://127.0.0.1:7420/v1/status"},
		{"http://127.0.0.1:7420/", "/v1/status", "http://127.0.0.1:7420/v1/status"},
		{"https://node.example:7420", "/v1/node", "https://node.example:7420/v1/node"},
		{" localhost:7420 ", "/v1/node", "http://localhost:7420/v1/node"},
		{":7420", "/v1/status", "http://127.0.0.1:7420/v1/status"},
		{"http://127.0.0.1:7420/v1/status", "/v1/status", "http://127.0.0.1:7420/v1/status"}, // the endpoint itself
		{"https://svc.example/admin/mlbridge/node", "/v1/node", "https://svc.example/admin/mlbridge/node"},
	} {
		if got, err := nodeURL("addr", c.addr, c.endpoint); err != nil || got != c.want {
			t.Errorf("nodeURL(%q, %q) = %q, %v; want %q", c.addr, c.endpoint, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "ftp://host:21", "http://", "http://[::1"} {
		if got, err := nodeURL("node", bad, "/v1/node"); err == nil || !strings.Contains(err.Error(), "--node") {
			t.Errorf("nodeURL(%q) = %q, %v; want an error naming --node", bad, got, err)
		}
	}
}

func TestListenAddr(t *testing.T) {
	for _, c := range []struct {
		addr string
		tls  bool
		want string // "" for an error
	}{
		{"127.0.0.1:7420", false, "127.0.0.1:7420"},
		{":7420", false, ":7420"},
		{"http://127.0.0.1:7420", false, "127.0.0.1:7420"},
		{"https://0.0.0.0:7420/", true, "0.0.0.0:7420"},
		{"https://127.0.0.1:7420", false, ""}, // https without a certificate
		{"http://127.0.0.1:7420", true, ""},   // a certificate, yet http
		{"http://127.0.0.1", false, ""},       // no port
		{"http://127.0.0.1:7420/v1", false, ""},
	} {
		got, err := listenAddr(c.addr, c.tls)
		if c.want == "" && (err == nil || !strings.Contains(err.Error(), "--addr")) || c.want != "" && (err != nil || got != c.want) {
			t.Errorf("listenAddr(%q, tls %v) = %q, %v; want %q", c.addr, c.tls, got, err, c.want)
		}
	}
}

// serve, status and migrate status against one node, each given a URL.
func TestNodeCommandsTakeURLs(t *testing.T) {
	t.Setenv(tokenEnv, "")
	addr, stop := startServe(t, "--workers", "1", "--addr", "http://127.0.0.1:0")
	defer stop()
	for _, a := range []string{"http://" + addr, "http://" + addr + "/", "http://" + addr + "/v1/status"} {
		if out, err := run(t, "status", "--addr", a); err != nil || !strings.Contains(out, "1/1 ready") {
			t.Errorf("status --addr %s: %v\n%s", a, err, out)
		}
	}
	dir := t.TempDir() // a module without legacy uses: the node's figures are the point
	for name, body := range map[string]string{"go.mod": "module example.com/app\n\ngo 1.26\n", "app.go": "package app\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := run(t, "migrate", "status", "--node", "http://"+addr, "--json", "-C", dir, ".")
	var st struct {
		Runtime *struct {
			Node string `json:"node"`
		} `json:"runtime"`
	}
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Runtime == nil || st.Runtime.Node != "http://"+addr+"/v1/node" {
		t.Fatalf("migrate status --node http://%s: %v\n%s", addr, err, out)
	}
}
