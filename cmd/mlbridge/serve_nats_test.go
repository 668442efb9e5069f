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
)

// TestServeNATSEmbedded: `serve --nats embedded` runs a loopback NATS server and serves the
// pool on it; a client Dials the bridge by its NATS name and calls it; serve drains on stop.
func TestServeNATSEmbedded(t *testing.T) {
	t.Setenv(tokenEnv, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	cmd := newRootCmd()
	cmd.SetOut(pw)
	cmd.SetErr(pw)
	cmd.SetArgs([]string{"serve", "--workers", "1", "--addr", "127.0.0.1:0", "--nats", "embedded",
		"--nats-listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--python", testenv.Python(t)})
	served := make(chan error, 1)
	go func() { served <- cmd.ExecuteContext(ctx); pw.Close() }()
	rd := bufio.NewReader(pr)
	var url string
	for url == "" {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("serve: %v (%v)", err, <-served)
		}
		if _, u, ok := strings.Cut(line, " on NATS at "); ok {
			url = strings.TrimSpace(u)
		}
	}
	go io.Copy(io.Discard, rd)
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("embedded NATS at %q, want loopback", url)
	}
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
	cancel()
	select {
	case err := <-served:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// TestServeNATSEmbeddedAuth: beyond loopback an embedded server needs a user and password,
// and then requires them of every client.
func TestServeNATSEmbeddedAuth(t *testing.T) {
	t.Setenv(natsPasswordEnv, "")
	f := natsFlags{url: embeddedNATS, listen: "0.0.0.0:0", dataDir: t.TempDir()}
	if _, _, err := startNATS(f, "m:EchoBridge", nil, nil); err == nil || !strings.Contains(err.Error(), "only with --nats-user") {
		t.Fatalf("embedded on 0.0.0.0 without auth: %v", err)
	}
	t.Setenv(natsPasswordEnv, "s3cret-pass")
	f.user, f.listen = "node", "127.0.0.1:0"
	p := fakeAdapter{}
	url, stop, err := startNATS(f, "m:EchoBridge", p, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer stop(context.Background())
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
