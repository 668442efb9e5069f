package mlnats_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/mlnats"
)

// TestRegistryRemote: a remote: entry in mlbridge.yaml is an Adapter over NATS.
func TestRegistryRemote(t *testing.T) {
	e := embedded(t)
	startNode(t, e)
	cfg, err := mlbridge.ParseRegistryConfig([]byte("bridges:\n  echo:\n    remote: {nats: \"" + e.URL() + "\"}\n  other:\n    remote: {nats: \"" + e.URL() + "\", name: nobody}\n"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := mlbridge.NewRegistry(cfg, mlbridge.RegistryOptions{Logger: quiet, Remote: mlnats.RegistryDialer(mlnats.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	ctx := context.Background()
	a, err := reg.Adapter(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := mlbridge.Decode[int](a.Call(ctx, "add", map[string]any{"a": 2, "b": 3})); err != nil || v != 5 {
		t.Fatalf("add through the registry: %v %v", v, err)
	}
	if _, err := reg.Adapter(ctx, "other"); !errors.Is(err, mlbridge.ErrUnavailable) {
		t.Fatalf("remote no node serves: %v", err)
	}
	if _, err := mlbridge.ParseRegistryConfig([]byte("bridges:\n  x:\n    bridge: a.b:C\n    remote: {nats: \"nats://h\"}\n")); err == nil || !strings.Contains(err.Error(), "choose one") {
		t.Fatalf("remote with bridge: %v", err)
	}
	noDialer, _ := mlbridge.NewRegistry(cfg, mlbridge.RegistryOptions{Logger: quiet})
	if _, err := noDialer.Adapter(ctx, "echo"); !errors.Is(err, mlbridge.ErrNoRemoteDialer) {
		t.Fatalf("no dialer: %v", err)
	}
}

// TestNodeFromRegistry: NodeConfig.Registry serves every bridge of a Registry.
func TestNodeFromRegistry(t *testing.T) {
	e := embedded(t)
	cfg, err := mlbridge.ParseRegistryConfig([]byte("bridges:\n  echo:\n    bridge: mlbridge_worker.echo:EchoBridge\n    mode: process\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Python = testenv.Python(t)
	reg, err := mlbridge.NewRegistry(cfg, mlbridge.RegistryOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	var nc mlnats.NodeConfig
	if err := nc.Registry(context.Background(), reg); err != nil {
		t.Fatal(err)
	}
	nc.Logger = quiet
	n, err := mlnats.NewNode(connect(t, e), nc)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	r := dial(t, e, mlnats.Options{})
	if v, err := mlbridge.Decode[int](r.Call(context.Background(), "add", map[string]any{"a": 1, "b": 1})); err != nil || v != 2 {
		t.Fatalf("add: %v %v", v, err)
	}
}

// TestRegistryRemoteHostFuncs: RegistryOptions.HostFuncs reach a remote: entry as its
// Remote's host functions: the node's Python handler calls the registry's Go function, asked
// for by the entry's name; a function of the same name in the dialer's Options gives way to
// the entry's (a program that passed its functions to both keeps working).
func TestRegistryRemoteHostFuncs(t *testing.T) {
	e := embedded(t)
	c := &hostClient{name: "registry"}
	forwardingNode(t, e, nil, mlnats.ForwardFunc(c.whoami()))
	cfg, err := mlbridge.ParseRegistryConfig([]byte("bridges:\n  models:\n    remote: {nats: \"" + e.URL() + "\", name: echo}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	hostFuncs := func(bridge string) []mlbridge.HostFunc {
		asked = append(asked, bridge)
		return []mlbridge.HostFunc{c.whoami()}
	}
	reg, err := mlbridge.NewRegistry(cfg, mlbridge.RegistryOptions{Logger: quiet, HostFuncs: hostFuncs,
		Remote: mlnats.RegistryDialer(mlnats.Options{Logger: quiet})})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	ctx := context.Background()
	a, err := reg.Adapter(ctx, "models")
	if err != nil {
		t.Fatal(err)
	}
	got, err := mlbridge.Decode[whoOut](a.Call(ctx, "host_call", hostArgs("fn", "whoami", "args", hostArgs("tag", "via registry"))))
	if err != nil || got.Client != "registry" || got.Tag != "via registry" || got.Depth != 1 {
		t.Fatalf("host call through the registry's remote entry: %+v %v", got, err)
	}
	if !slices.Equal(asked, []string{"models"}) || !slices.Equal(c.invoked(), []string{"via registry"}) {
		t.Fatalf("HostFuncs asked for %v; the function ran for %v", asked, c.invoked())
	}

	dialers := &hostClient{name: "dialer"}
	twice, err := mlbridge.NewRegistry(cfg, mlbridge.RegistryOptions{Logger: quiet, HostFuncs: hostFuncs,
		Remote: mlnats.RegistryDialer(mlnats.Options{Logger: quiet, HostFuncs: []mlbridge.HostFunc{dialers.whoami()}})})
	if err != nil {
		t.Fatal(err)
	}
	defer twice.Close()
	b, err := twice.Adapter(ctx, "models")
	if err != nil {
		t.Fatalf("whoami from the registry and the dialer's options: %v", err)
	}
	got, err = mlbridge.Decode[whoOut](b.Call(ctx, "host_call", hostArgs("fn", "whoami", "args", hostArgs("tag", "both"))))
	if err != nil || got.Client != "registry" || len(dialers.invoked()) != 0 {
		t.Fatalf("whoami in both: %+v %v (the dialer's ran for %v); want the registry's", got, err, dialers.invoked())
	}
}
