package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/mlnats"
	"github.com/mlbridge/mlbridge/store"
)

// startServeNATS runs `mlbridge serve args...` until stop; url is the NATS URL it printed.
func startServeNATS(t *testing.T, args ...string) (url string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	cmd := newRootCmd()
	cmd.SetOut(pw)
	cmd.SetErr(pw)
	cmd.SetArgs(append(append([]string{"serve", "--workers", "1", "--addr", "127.0.0.1:0"}, args...), "--python", testenv.Python(t)))
	served := make(chan error, 1)
	go func() { served <- cmd.ExecuteContext(ctx); pw.Close() }()
	rd := bufio.NewReader(pr)
	for url == "" {
		line, err := rd.ReadString('\n')
		if err != nil {
			cancel()
			t.Fatalf("serve: %v (%v)", err, <-served)
		}
		if _, u, ok := strings.Cut(line, " on NATS at "); ok {
			url = strings.TrimSpace(u)
		}
	}
	go io.Copy(io.Discard, rd)
	return url, func() error {
		cancel()
		select {
		case err := <-served:
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			return err
		case <-time.After(30 * time.Second):
			return errors.New("serve did not stop")
		}
	}
}

// TestServeNATSEmbedded: `serve --nats embedded` runs a loopback NATS server and serves the
// pool on it; a second serve joins it with --nats URL; with --nats-kv both keep definitions
// in one KV bucket, so a definition created through either is executed by both. Each drains
// on stop.
func TestServeNATSEmbedded(t *testing.T) {
	t.Setenv(tokenEnv, "")
	url, stopA := startServeNATS(t, "--nats", "embedded", "--nats-listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--nats-kv", "defs")
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("embedded NATS at %q, want loopback", url)
	}
	_, stopB := startServeNATS(t, "--nats", url, "--nats-kv", "defs")
	ctx := context.Background()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r, err := mlnats.Dial(ctx, nc, "echobridge", mlnats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if v, err := mlbridge.Decode[int](r.Call(ctx, "add", map[string]any{"a": 40, "b": 2})); err != nil || v != 42 {
		t.Fatalf("add over NATS: %v %v", v, err)
	}
	if _, err := r.Create(ctx, store.Definition{ID: "g", Kind: "greeting", Spec: map[string]any{"prefix": "hey"}}); err != nil {
		t.Fatal(err)
	}
	pids := map[int]bool{}
	for range 40 {
		v, err := mlbridge.Decode[string](r.Execute(ctx, "g", map[string]any{"name": "Al"}))
		if err != nil || v != "hey Al" {
			t.Fatalf("execute: %q %v", v, err)
		}
		pid, err := mlbridge.Decode[int](r.Call(ctx, "pid", nil))
		if err != nil {
			t.Fatal(err)
		}
		pids[pid] = true
	}
	if len(pids) != 2 {
		t.Errorf("calls reached %d workers, want both nodes'", len(pids))
	}
	if err := stopB(); err != nil {
		t.Fatalf("serve B: %v", err)
	}
	if err := stopA(); err != nil {
		t.Fatalf("serve A: %v", err)
	}
}

// TestServeNATSEmbeddedAuth: beyond loopback an embedded server needs a user and password,
// and then requires them of every client.
func TestServeNATSEmbeddedAuth(t *testing.T) {
	t.Setenv(natsPasswordEnv, "")
	f := natsFlags{url: embeddedNATS, listen: "0.0.0.0:0", dataDir: t.TempDir()}
	if _, err := connectNATS(f, quietLog()); err == nil || !strings.Contains(err.Error(), "only with --nats-user") {
		t.Fatalf("embedded on 0.0.0.0 without auth: %v", err)
	}
	t.Setenv(natsPasswordEnv, "s3cret-pass")
	f.user, f.listen = "node", "127.0.0.1:0"
	link, err := connectNATS(f, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := link.serve("fake", fakeAdapter{}, nil, quietLog()); err != nil {
		t.Fatal(err)
	}
	defer link.stop(context.Background())
	url := link.url
	if strings.Contains(url, "s3cret") {
		t.Errorf("printed URL holds the password: %s", url)
	}
	plain := strings.Replace(url, "node:***@", "", 1)
	if nc, err := nats.Connect(plain); err == nil {
		nc.Close()
		t.Fatal("a client without the password connected")
	}
	nc, err := nats.Connect(plain, nats.UserInfo("node", "s3cret-pass"))
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
}

// fakeAdapter serves nothing; a node needs only its Info to register.
type fakeAdapter struct{ mlbridge.Adapter }

func (fakeAdapter) Info() mlbridge.Info { return mlbridge.Info{Framework: "fake"} }

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
