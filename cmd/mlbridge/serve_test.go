package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// startServe runs `mlbridge serve args...` until stop, which returns serve's error; addr is
// the host:port serve printed.
func startServe(t *testing.T, args ...string) (addr string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	cmd := newRootCmd()
	cmd.SetOut(pw)
	cmd.SetErr(pw)
	cmd.SetArgs(append(append([]string{"serve"}, args...), "--python", testenv.Python(t)))
	served := make(chan error, 1)
	go func() { served <- cmd.ExecuteContext(ctx); pw.Close() }()

	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("serve printed nothing: %v (%v)", err, <-served)
	}
	go io.Copy(io.Discard, pr)
	_, addr, _ = strings.Cut(line, "://")
	return strings.TrimSpace(addr), func() error { cancel(); return <-served }
}

func TestServeAndStatus(t *testing.T) {
	t.Setenv(tokenEnv, "")
	addr, stop := startServe(t, "--workers", "2", "--addr", "127.0.0.1:0")

	resp, err := http.Post("http://"+addr+"/v1/call/add", "application/json", strings.NewReader(`{"a": 40, "b": 2}`))
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body["result"] != 42.0 {
		t.Fatalf("call: %d %v", resp.StatusCode, body)
	}
	resp, err = http.Post("http://"+addr+"/v1/call/add", "application/json", strings.NewReader(`{"a": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 400 || body["category"] != "invalid_argument" {
		t.Fatalf("bad call: %d %v", resp.StatusCode, body)
	}

	out, err := run(t, "status", "--addr", addr)
	if err != nil || !strings.Contains(out, "healthy — 2/2 ready") || !strings.Contains(out, "add") ||
		!strings.Contains(out, "calls by mode: call 2 (1 failed), stream 0, submit 0") ||
		!strings.Contains(out, "calls by API:  current 2 (1 failed)") || !strings.Contains(out, "% async over ") {
		t.Fatalf("status table:\n%s\n%v", out, err)
	}
	out, err = run(t, "status", "--addr", addr, "--json")
	var st mlbridge.PoolStats
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || len(st.Workers) != 2 || st.Workers[0].Pid == 0 {
		t.Fatalf("status --json: %q %v", out, err)
	}
	if st.Handlers.Modes["lm_wait"] != mlbridge.KindSync || st.Handlers.Modes["echo"] != mlbridge.KindAsync {
		t.Errorf("handler modes in status --json: %+v", st.Handlers.Modes)
	}
	// Calls per kind arrive with the workers' next health check (every 2 s).
	for deadline := time.Now().Add(30 * time.Second); st.Handlers.Kinds[mlbridge.KindSync].Calls != 2; {
		if time.Now().After(deadline) {
			t.Fatalf("add (sync) called twice, kinds say %+v", st.Handlers.Kinds)
		}
		time.Sleep(100 * time.Millisecond)
		out, _ = run(t, "status", "--addr", addr, "--json")
		_ = json.Unmarshal([]byte(out), &st)
	}
	resp, err = http.Get("http://" + addr + "/v1/node")
	if err != nil {
		t.Fatal(err)
	}
	var node mlbridge.NodeStatus
	_ = json.NewDecoder(resp.Body).Decode(&node)
	resp.Body.Close()
	if len(node.Bridges) != 1 || node.Bridges[testenv.EchoBridge].Size != 2 {
		t.Fatalf("/v1/node: %+v", node)
	}

	if err := stop(); err != nil {
		t.Fatalf("serve stopped with %v", err)
	}
	if _, err := run(t, "status", "--addr", addr); err == nil || !strings.Contains(err.Error(), "mlbridge serve") {
		t.Fatalf("status without a node: %v", err)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and localhost, and its key, as PEM files.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mlbridge test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "node.pem"), filepath.Join(dir, "node.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// Beyond loopback with a token and TLS: calls need the token, and status reads the node over
// HTTPS with the same token file.
func TestServeTLSWithToken(t *testing.T) {
	t.Setenv(tokenEnv, "")
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, stop := startServe(t, "--workers", "1", "--addr", "0.0.0.0:0",
		"--token-file", tokenFile, "--tls-cert", certFile, "--tls-key", keyFile)
	_, port, _ := net.SplitHostPort(addr)
	base := "https://127.0.0.1:" + port

	pemBytes, _ := os.ReadFile(certFile)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	call := func(token string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", base+"/v1/call/add", strings.NewReader(`{"a": 40, "b": 2}`))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	if status, body := call(testToken); status != 200 || body["result"] != 42.0 {
		t.Fatalf("call over TLS: %d %v", status, body)
	}
	if status, body := call(""); status != 401 || body["error"] == nil {
		t.Fatalf("call without the token: %d %v", status, body)
	}
	if resp, err := http.Get("http://127.0.0.1:" + port + "/v1/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered on the TLS port")
		}
	}

	out, err := run(t, "status", "--addr", base, "--tls-ca", certFile, "--token-file", tokenFile)
	if err != nil || !strings.Contains(out, "healthy — 1/1 ready") {
		t.Fatalf("status over TLS: %v\n%s", err, out)
	}
	t.Setenv(tokenEnv, testToken)
	if _, err := run(t, "status", "--addr", base, "--tls-ca", certFile); err != nil {
		t.Fatalf("status with $%s: %v", tokenEnv, err)
	}
	t.Setenv(tokenEnv, "")
	if _, err := run(t, "status", "--addr", base, "--tls-ca", certFile); err == nil ||
		!strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), tokenEnv) {
		t.Fatalf("status without the token: %v", err)
	}
	if _, err := run(t, "status", "--addr", base, "--token-file", tokenFile); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("status trusting the system's CAs only: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve stopped with %v", err)
	}
}
