package mlbridge_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/store"
)

func TestRegistryConfigErrors(t *testing.T) {
	cases := map[string]string{
		"unknown key":     "bridges:\n  echo:\n    bridge: a.b:C\n    wokers: 2\n",
		"no bridges":      "default: x\n",
		"bad default":     "default: nope\nbridges:\n  echo:\n    bridge: a.b:C\n",
		"bridge & script": "bridges:\n  echo:\n    bridge: a.b:C\n    script: x.py\n",
		"not module:Cls":  "bridges:\n  echo:\n    bridge: echo\n",
		"bad mode":        "bridges:\n  echo:\n    bridge: a.b:C\n    mode: cluster\n",
		"process of 3":    "bridges:\n  echo:\n    bridge: a.b:C\n    mode: process\n    workers: 3\n",
		"bad duration":    "bridges:\n  echo:\n    bridge: a.b:C\n    call_timeout: soon\n",
		"bad python":      "bridges:\n  echo:\n    bridge: a.b:C\n    min_python: eleven\n",
		"bad env name":    "bridges:\n  echo:\n    bridge: a.b:C\n    env: [\"MY KEY\"]\n",
		"bad name":        "bridges:\n  Echo Bridge:\n    bridge: a.b:C\n",
	}
	for name, yaml := range cases {
		_, err := mlbridge.ParseRegistryConfig([]byte(yaml))
		if !errors.Is(err, mlbridge.ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", name, err)
		}
		// The category every configuration error has, registry or not.
		if !errors.Is(err, mlbridge.ErrInvalidConfiguration) {
			t.Errorf("%s: got %v, want it to match ErrInvalidConfiguration too", name, err)
		}
	}
	cfg, err := mlbridge.ParseRegistryConfig([]byte("default: echo\nbridges:\n  echo:\n    bridge: mlbridge_worker.echo:EchoBridge\n    call_timeout: 30s\n    options: {greeting: hi}\n"))
	if err != nil || cfg.Bridges["echo"].CallTimeout.String() != "30s" || cfg.Bridges["echo"].Options["greeting"] != "hi" {
		t.Fatalf("valid config: %+v %v", cfg, err)
	}
}

func echoRegistry(t *testing.T, extra map[string]mlbridge.BridgeConfig) *mlbridge.Registry {
	t.Helper()
	cfg := mlbridge.RegistryConfig{Python: testenv.Python(t), Bridges: map[string]mlbridge.BridgeConfig{
		"echo": {Bridge: testenv.EchoBridge, Workers: 2, Options: map[string]any{"greeting": "hola"}},
	}}
	for k, v := range extra {
		cfg.Bridges[k] = v
	}
	r, err := mlbridge.NewRegistry(cfg, mlbridge.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// Bridges start on first use; concurrent first uses share one start; options reach Python;
// generic resources work through the Adapter interface.
func TestRegistryLazyStartAndAdapter(t *testing.T) {
	ctx := context.Background()
	r := echoRegistry(t, nil)
	if r.Started("echo") {
		t.Fatal("started before first use")
	}
	adapters := make([]mlbridge.Adapter, 4)
	var wg sync.WaitGroup
	for i := range adapters {
		wg.Go(func() {
			a, err := r.Default(ctx)
			if err != nil {
				t.Error(err)
			}
			adapters[i] = a
		})
	}
	wg.Wait()
	for _, a := range adapters[1:] {
		if a != adapters[0] {
			t.Fatal("concurrent first uses started more than one pool")
		}
	}
	a := adapters[0]
	if !r.Started("echo") || a.Info().Framework != "echo" || a.Stats().Size != 2 {
		t.Fatalf("info %+v, stats size %d", a.Info(), a.Stats().Size)
	}
	if v, err := mlbridge.Decode[string](a.Call(ctx, "get_option", map[string]any{"name": "greeting"})); err != nil || v != "hola" {
		t.Fatalf("option: %q %v", v, err)
	}
	if _, err := a.Create(ctx, store.Definition{ID: "g", Kind: "greeting", Spec: map[string]any{"prefix": "hi"}}); err != nil {
		t.Fatal(err)
	}
	if v, err := mlbridge.Decode[string](a.Execute(ctx, "g", map[string]any{"name": "ada"})); err != nil || v != "hi ada" {
		t.Fatalf("execute: %q %v", v, err)
	}
	if d, err := a.Describe(ctx, "g"); err != nil || d["prefix"] != "hi" || d["kind"] != "greeting" {
		t.Fatalf("describe: %v %v", d, err)
	}
	if defs, err := a.List(ctx, "greeting"); err != nil || len(defs) != 1 {
		t.Fatalf("list: %v %v", defs, err)
	}
	// A definition the bridge cannot build is refused and not kept.
	if _, err := a.Create(ctx, store.Definition{ID: "bad", Kind: "no_such_kind"}); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("bad kind: %v", err)
	}
	if _, err := a.Get(ctx, "bad"); !errors.Is(err, mlbridge.ErrNotFound) {
		t.Fatalf("a refused definition was kept: %v", err)
	}
	if err := a.Delete(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Execute(ctx, "g", nil); !errors.Is(err, mlbridge.ErrNotFound) {
		t.Fatalf("deleted: %v", err)
	}
	if err := a.Health(ctx); err != nil {
		t.Fatal(err)
	}
}

// Requirements are checked before anything starts, and say what is missing.
func TestRegistryRequirements(t *testing.T) {
	ctx := context.Background()
	r := echoRegistry(t, map[string]mlbridge.BridgeConfig{
		"needy": {Bridge: testenv.EchoBridge, Env: []string{"MLBRIDGE_TEST_UNSET_VAR"},
			Packages: []string{"no_such_package_xyz"}, MinPython: "3.99"},
	})
	problems, err := r.Check(ctx, "needy")
	if err != nil {
		t.Fatal(err)
	}
	var text []string
	for _, p := range problems {
		text = append(text, p.What)
	}
	all := strings.Join(text, "\n")
	for _, want := range []string{"MLBRIDGE_TEST_UNSET_VAR", "no_such_package_xyz", "needs 3.99"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems do not mention %q:\n%s", want, all)
		}
	}
	if _, err := r.Adapter(ctx, "needy"); !errors.Is(err, mlbridge.ErrRequirements) || r.Started("needy") {
		t.Fatalf("start with unmet requirements: %v", err)
	}
	if p, err := r.Check(ctx, "echo"); err != nil || len(p) != 0 {
		t.Fatalf("echo: %v %v", p, err)
	}
	if _, err := r.Adapter(ctx, "nope"); !errors.Is(err, mlbridge.ErrUnknownBridge) {
		t.Fatalf("unknown bridge: %v", err)
	}
	if err := r.Register("echo", mlbridge.BridgeConfig{Bridge: testenv.EchoBridge}); !errors.Is(err, mlbridge.ErrConfig) ||
		!errors.Is(err, mlbridge.ErrInvalidConfiguration) {
		t.Fatalf("registered twice: %v", err)
	}
}

// An empty file and a second document are errors that say so: the decoder's own message for
// the first was a bare "EOF", and a second document was silently dropped with its bridges.
func TestRegistryConfigDocuments(t *testing.T) {
	for name, c := range map[string]struct{ yaml, want string }{
		"empty":         {"", "no YAML document"},
		"comments only": {"# bridges come later\n", "no YAML document"},
		"two documents": {"bridges: {}\n---\nbridges:\n  echo:\n    bridge: a.b:C\n", "a second YAML document (line 3)"},
		"broken second": {"bridges: {}\n--- [\n", "line 2"},
	} {
		_, err := mlbridge.ParseRegistryConfig([]byte(c.yaml))
		if !errors.Is(err, mlbridge.ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want ErrConfig saying %q", name, err, c.want)
		}
	}
	for name, y := range map[string]string{
		"trailing ---": "bridges:\n  echo:\n    bridge: a.b:C\n---\n",
		"leading ---":  "---\nbridges:\n  echo:\n    bridge: a.b:C\n",
		"document end": "bridges:\n  echo:\n    bridge: a.b:C\n...\n",
	} {
		cfg, err := mlbridge.ParseRegistryConfig([]byte(y))
		if err != nil || cfg.Bridges["echo"].Bridge != "a.b:C" {
			t.Errorf("%s: %+v %v", name, cfg, err)
		}
	}
}

// A number with a fraction for a whole-number setting is an error naming the bridge, key and
// line; the decoder truncated it (workers: 2.9 started 2 workers). Whole numbers written as
// floats (1e3) are whole, and free-form options keep their floats.
func TestRegistryConfigFractionalInts(t *testing.T) {
	yaml := "bridges:\n  echo: &e\n    bridge: a.b:C\n    workers: 2.9\n    queue_size: 1e3\n    options: {ratio: 0.5}\n" +
		"  more:\n    <<: *e\n    max_requests: 7.5\n    workers: 2\n    batching: {predict: {max_size: 2.5}}\n"
	_, err := mlbridge.ParseRegistryConfig([]byte(yaml))
	for _, want := range []string{
		`bridge "echo": workers: 2.9 is not a whole number (line 4)`,
		`bridge "more": max_requests: 7.5 is not a whole number (line 9)`,
		`bridge "more": batching: 2.5 is not a whole number (line 11)`,
	} {
		if !errors.Is(err, mlbridge.ErrConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want ErrConfig saying %q", err, want)
		}
	}
	if strings.Contains(fmt.Sprint(err), "1e3") || strings.Contains(fmt.Sprint(err), "0.5") {
		t.Errorf("a whole number or an option was refused: %v", err)
	}
	cfg, err := mlbridge.ParseRegistryConfig([]byte("bridges:\n  echo:\n    bridge: a.b:C\n    queue_size: 1e3\n    options: {ratio: 0.5}\n"))
	if err != nil || cfg.Bridges["echo"].QueueSize != 1000 || cfg.Bridges["echo"].Options["ratio"] != 0.5 {
		t.Fatalf("whole float and option: %+v %v", cfg.Bridges["echo"], err)
	}
}

// Paths are not expanded, and a path that looks as if it expected it is an error saying so:
// "${HOME}/venv/bin/python" was resolved as a directory "${HOME}" beside the file, and the
// error was that no interpreter was there.
func TestRegistryConfigUnexpandedPaths(t *testing.T) {
	yaml := "python: ~/venv/bin/python\nbridges:\n  echo:\n    bridge: a.b:C\n    python: ${HOME}/venv/bin/python\n" +
		"    pythonpath: [python, $PWD/lib]\n    dir: ~/work\n    script: \"\"\n"
	_, err := mlbridge.ParseRegistryConfig([]byte(yaml))
	for _, want := range []string{
		`python "~/venv/bin/python": paths are not expanded`,
		`bridge "echo": python "${HOME}/venv/bin/python": paths are not expanded`,
		`dir "~/work": paths are not expanded`,
		`pythonpath "$PWD/lib": paths are not expanded`,
	} {
		if !errors.Is(err, mlbridge.ErrConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want ErrConfig saying %q", err, want)
		}
	}
	if strings.Contains(fmt.Sprint(err), `"python"`) {
		t.Errorf("a plain relative path was refused: %v", err)
	}
}

// A bridge declared by its legacy script (python/dspy_bridge.py) starts that script as each
// worker, in pool-worker mode with the bridge's name as its worker id.
func TestRegistryLegacyScript(t *testing.T) {
	ctx := context.Background()
	r, err := mlbridge.NewRegistry(mlbridge.RegistryConfig{Python: testenv.Python(t), Bridges: map[string]mlbridge.BridgeConfig{
		"legacy-dspy": {Script: filepath.Join(testenv.Root(), "python", "dspy_bridge.py"), Workers: 1},
	}}, mlbridge.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a, err := r.Adapter(ctx, "legacy-dspy")
	if err != nil {
		t.Fatal(err)
	}
	if a.Info().Framework != "dspy" {
		t.Fatalf("info %+v", a.Info())
	}
	if _, err := a.Call(ctx, "configure_lm", map[string]any{"spec": map[string]any{"provider": "dummy", "answers": []any{map[string]any{"answer": "4"}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Call(ctx, "create_program", map[string]any{"program_id": "p", "signature": "question -> answer: int"}); err != nil {
		t.Fatal(err)
	}
	out, err := mlbridge.Decode[struct {
		Answer int `msgpack:"answer"`
	}](a.Call(ctx, "execute_program", map[string]any{"program_id": "p", "inputs": map[string]any{"question": "2+2?"}}))
	if err != nil || out.Answer != 4 {
		t.Fatalf("%+v %v", out, err)
	}
}
