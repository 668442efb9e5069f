package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
)

// TestServeNATSHostFuncs: `serve --nats-host-funcs FILE` announces the file's functions to
// the workers; a Python handler's call of one runs in the client that made the call.
func TestServeNATSHostFuncs(t *testing.T) {
	t.Setenv(tokenEnv, "")
	decl := filepath.Join(t.TempDir(), "host.yaml")
	if err := os.WriteFile(decl, []byte(`
greet:
  description: Greets someone, in the client
  schema: {type: object, properties: {who: {type: string}}, required: [who]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	url, stop := startServeNATS(t, "--nats", "embedded", "--nats-listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--nats-host-funcs", decl)
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	greeted := make(chan string, 1)
	greet := mlbridge.Func("greet", func(ctx context.Context, in struct {
		Who string `json:"who"`
	}) (string, error) {
		greeted <- in.Who
		return "hello " + in.Who + " from the client", nil
	})
	ctx := context.Background()
	r, err := mlnats.Dial(ctx, nc, "echobridge", mlnats.Options{HostFuncs: []mlbridge.HostFunc{greet}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := mlbridge.Decode[string](r.Call(ctx, "host_call", map[string]any{"fn": "greet", "args": map[string]any{"who": "ada"}}))
	if err != nil || got != "hello ada from the client" {
		t.Fatalf("got %q %v", got, err)
	}
	if who := <-greeted; who != "ada" { // it ran here, in this process
		t.Fatalf("greet ran with %q", who)
	}
	funcs, err := mlbridge.Decode[map[string]map[string]any](r.Call(ctx, "host_funcs", nil))
	if err != nil || funcs["greet"]["description"] != "Greets someone, in the client" || funcs["greet"]["schema"].(map[string]any)["required"] == nil {
		t.Fatalf("host.functions(): %v %v", funcs, err)
	}
}

// TestServeNATSHostFuncsRefused: a file that is not a map of declarations, or the flag
// without --nats, is a configuration error.
func TestServeNATSHostFuncsRefused(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("greet: {descripton: typo}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []natsFlags{
		{url: "embedded", hostFuncs: bad},
		{url: "embedded", hostFuncs: empty},
		{url: "embedded", hostFuncs: filepath.Join(dir, "missing.yaml")},
		{hostFuncs: bad},
	} {
		if _, err := f.forwardedFuncs(); !errors.Is(err, mlbridge.ErrInvalidConfiguration) {
			t.Errorf("%+v: %v", f, err)
		} else {
			t.Logf("%v", err)
		}
	}
}
