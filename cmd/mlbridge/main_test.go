package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append(args, "--python", testenv.Python(t)))
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestCall(t *testing.T) {
	out, err := run(t, "call", "add", `{"a": 40, "b": 2}`)
	if err != nil || strings.TrimSpace(out) != "42" {
		t.Fatalf("call add: %q %v", out, err)
	}
	out, err = run(t, "call", "count", `{"n": 3}`, "--stream")
	if err != nil || out != "0\n1\n2\n" {
		t.Fatalf("call count --stream: %q %v", out, err)
	}
	if _, err := run(t, "call", "add", `{"a": 1}`); err == nil || !strings.Contains(err.Error(), "invalid_argument") {
		t.Fatalf("bad arguments: %v", err)
	}
	if _, err := run(t, "call", "add", `[1, 2]`); err == nil || !strings.Contains(err.Error(), "JSON object") {
		t.Fatalf("non-object arguments: %v", err)
	}
}

// TestBenchJSONContract checks the fields other tools read from `mlbridge bench --json`.
func TestBenchJSONContract(t *testing.T) {
	out, err := run(t, "bench", "--scenario", "noop", "--workers", "1", "--concurrency", "4",
		"--duration", "800ms", "--rounds", "1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not one JSON object: %q", out)
	}
	if rep["scenario"] != "noop" || rep["errors"] != 0.0 {
		t.Fatalf("report %v", rep)
	}
	for _, k := range []string{"p50_us", "p99_us", "calls_per_s", "floor_p50_us", "ratio_p50", "floor_calls_per_s", "ratio_calls_per_s"} {
		if v, ok := rep[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", k, rep[k])
		}
	}
	if _, err := run(t, "bench", "--scenario", "nope"); err == nil {
		t.Fatal("unknown scenario accepted")
	}
}

// The dspy scenario reports ExecuteProgram against the same program run directly in Python;
// the numbers are whatever the machine gives, so only their presence and coherence are checked.
func TestBenchDSPyJSONContract(t *testing.T) {
	out, err := run(t, "bench", "--scenario", "dspy", "--duration", "1s", "--rounds", "1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not one JSON object: %q", out)
	}
	if rep["scenario"] != "dspy" || rep["errors"] != 0.0 {
		t.Fatalf("report %v", rep)
	}
	for _, k := range []string{"p50_us", "direct_p50_us", "calls"} {
		if v, ok := rep[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", k, rep[k])
		}
	}
	overhead, _ := rep["overhead_us"].(float64) // omitted when exactly zero
	if d := rep["p50_us"].(float64) - rep["direct_p50_us"].(float64) - overhead; d > 1e-6 || d < -1e-6 {
		t.Errorf("overhead_us is not p50_us - direct_p50_us: %v", rep)
	}
}

func TestDoctor(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	invalid := filepath.Join(dir, "invalid.yaml")
	for path, body := range map[string]string{
		good:    "bridges:\n  echo:\n    bridge: mlbridge_worker.echo:EchoBridge\n    min_python: \"3.11\"\n",
		bad:     "bridges:\n  echo:\n    bridge: mlbridge_worker.echo:EchoBridge\n  needy:\n    bridge: no_such_module_xyz:Bridge\n    env: [MLBRIDGE_TEST_UNSET_VAR]\n",
		invalid: "bridges:\n  echo:\n    bridge: mlbridge_worker.echo:EchoBridge\n    workerz: 2\n",
	} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := run(t, "doctor", "--config", good)
	if err != nil || !strings.Contains(out, "echo") || !strings.Contains(out, "ok") {
		t.Fatalf("good config: %v\n%s", err, out)
	}
	out, err = run(t, "doctor", "--config", bad)
	if !errors.Is(err, errProblems) || !strings.Contains(out, "no_such_module_xyz") || !strings.Contains(out, "MLBRIDGE_TEST_UNSET_VAR") {
		t.Fatalf("bad config: %v\n%s", err, out)
	}
	if _, err := run(t, "doctor", "--config", invalid); !errors.Is(err, mlbridge.ErrConfig) || !strings.Contains(err.Error(), "workerz") {
		t.Fatalf("invalid config: %v", err)
	}
}

func TestBenchLegacyVsNewJSONContract(t *testing.T) {
	out, err := run(t, "bench", "--scenario", "legacy-vs-new", "--duration", "1s", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not one JSON object: %q", out)
	}
	if rep["scenario"] != "legacy-vs-new" || rep["errors"] != 0.0 {
		t.Fatalf("report %v", rep)
	}
	for _, k := range []string{"p50_us", "legacy_p50_us", "calls"} {
		if v, ok := rep[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", k, rep[k])
		}
	}
	pct, _ := rep["overhead_pct"].(float64)
	want := 100 * (rep["p50_us"].(float64) - rep["legacy_p50_us"].(float64)) / rep["legacy_p50_us"].(float64)
	if d := pct - want; d > 1e-6 || d < -1e-6 {
		t.Errorf("overhead_pct %v is not (p50 - legacy p50) / legacy p50 = %v", pct, want)
	}
}

// trace-overhead: traced (the Go client and handler spans exported; the worker set up for
// OTLP, exporting nothing for a noop: it starts no span per request) against no provider, in
// one run.
func TestBenchTraceOverheadJSONContract(t *testing.T) {
	out, err := run(t, "bench", "--scenario", "trace-overhead", "--duration", "1s", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not one JSON object: %q", out)
	}
	if rep["scenario"] != "trace-overhead" || rep["errors"] != 0.0 {
		t.Fatalf("report %v", rep)
	}
	for _, k := range []string{"p50_us", "base_p50_us", "go_traced_p50_us", "calls", "spans_exported"} {
		if v, ok := rep[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", k, rep[k])
		}
	}
	if v, ok := rep["worker_exports"]; ok && v != 0.0 {
		t.Errorf("worker_exports = %v: the worker exported spans of noop calls", v)
	}
	pct, _ := rep["overhead_pct"].(float64)
	want := 100 * (rep["p50_us"].(float64) - rep["base_p50_us"].(float64)) / rep["base_p50_us"].(float64)
	if d := pct - want; d > 1e-6 || d < -1e-6 {
		t.Errorf("overhead_pct %v is not (p50 - base p50) / base p50 = %v", pct, want)
	}
}

// callback: a call whose handler makes one host call against a no-op, in one run.
func TestBenchCallbackJSONContract(t *testing.T) {
	out, err := run(t, "bench", "--scenario", "callback", "--duration", "1s", "--rounds", "1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not one JSON object: %q", out)
	}
	if rep["scenario"] != "callback" || rep["errors"] != 0.0 {
		t.Fatalf("report %v", rep)
	}
	for _, k := range []string{"p50_us", "noop_p50_us", "ratio_p50", "calls"} {
		if v, ok := rep[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", k, rep[k])
		}
	}
	if r, want := rep["ratio_p50"].(float64), rep["p50_us"].(float64)/rep["noop_p50_us"].(float64); r-want > 1e-9 || want-r > 1e-9 {
		t.Errorf("ratio_p50 %v is not p50_us / noop_p50_us = %v", r, want)
	}
}

// batch: single-row sklearn predicts, batched against unbatched, in one run; the key names are
// the issue's.
func TestBenchBatchJSONContract(t *testing.T) {
	out, err := run(t, "bench", "--scenario", "batch", "--duration", "2s", "--rounds", "1", "--concurrency", "16", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not one JSON object: %q", out)
	}
	if rep["scenario"] != "batch" || rep["errors"] != 0.0 {
		t.Fatalf("report %v", rep)
	}
	for _, k := range []string{"batched_calls_per_s", "unbatched_calls_per_s", "speedup", "batched_p99_us", "unbatched_p99_us", "mean_batch", "batch_max_size", "batch_max_wait_us"} {
		if v, ok := rep[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", k, rep[k])
		}
	}
	if s, want := rep["speedup"].(float64), rep["batched_calls_per_s"].(float64)/rep["unbatched_calls_per_s"].(float64); s-want > 1e-9 || want-s > 1e-9 {
		t.Errorf("speedup %v is not batched / unbatched calls/s = %v", s, want)
	}
}

// examples/greeter is the scaffold as generated: its own tests (Go here, Python in
// scripts/test) are the scaffold's tests, so it must stay byte-identical to what new-bridge writes.
func TestNewBridgeMatchesTheCommittedExample(t *testing.T) {
	files, err := renderScaffold("greeter", filepath.Join("..", "..", "examples", "greeter"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 {
		t.Fatalf("%d files", len(files))
	}
	for path, want := range files {
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs from the generator's output (regenerate: go run ./cmd/mlbridge new-bridge greeter --dir examples/greeter --force): %v", path, err)
		}
	}
}

func TestNewBridgeRefuses(t *testing.T) {
	if _, err := run(t, "new-bridge", "Bad-Name", "--dir", t.TempDir()); err == nil {
		t.Fatal("a bad name was accepted")
	}
	dir := filepath.Join(t.TempDir(), "x")
	if _, err := run(t, "new-bridge", "thing", "--dir", dir); err == nil {
		t.Fatal("a directory outside any Go module was accepted")
	}
	inRepo := filepath.Join("..", "..", "examples", "greeter")
	if _, err := run(t, "new-bridge", "greeter", "--dir", inRepo); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("existing files were overwritten without --force: %v", err)
	}
}

func TestBenchIOBoundJSONContract(t *testing.T) {
	out, err := run(t, "bench", "--scenario", "io-bound", "--concurrency", "40", "--duration", "2s", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not one JSON object: %q", out)
	}
	sync, _ := rep["sync_calls_per_s"].(float64)
	async, _ := rep["async_calls_per_s"].(float64)
	if rep["scenario"] != "io-bound" || rep["errors"] != 0.0 || sync <= 0 || async <= 0 {
		t.Fatalf("report %v", rep)
	}
	// 40 callers waiting 100 ms each: the sync handler is bounded by 8 pool threads, the async
	// one by the callers — a factor of 5 in theory, so the order is safe to check.
	if async <= sync {
		t.Errorf("async %.0f calls/s is not above sync %.0f", async, sync)
	}
}

// migrateApp is a copy of testdata/legacyapp that migrate can load offline: its directory,
// its app.go and that file's content before any command ran.
func migrateApp(t *testing.T) (dir, app string, before []byte) {
	t.Helper()
	dir = testenv.LegacyApp(t)
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOFLAGS", "-mod=mod")
	app = filepath.Join(dir, "app.go")
	before, err := os.ReadFile(app)
	if err != nil {
		t.Fatal(err)
	}
	return dir, app, before
}

// The migrate commands on a copy of testdata/legacyapp: a dry run prints the diff and the
// sites for a person and changes nothing; status counts per API; --apply writes.
func TestMigrateCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a copy of testdata/legacyapp")
	}
	dir, app, before := migrateApp(t)
	out, err := run(t, "migrate", "-C", dir)
	if err != nil || !strings.Contains(out, "+\tif err := pool.Client.ConfigureLM(ctx, dspy.LMConfig{") ||
		!strings.Contains(out, "adapters.NewPythonPoolV2 is deprecated") || !strings.Contains(out, "dry run: 1 file(s)") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if now, _ := os.ReadFile(app); !bytes.Equal(now, before) {
		t.Fatal("the dry run changed app.go")
	}
	out, err = run(t, "migrate", "status", "--json", "-C", dir)
	var st struct {
		Total  int            `json:"total"`
		PerAPI map[string]int `json:"per_api"`
	}
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.PerAPI["adapters.LMConfig"] != 1 || st.PerAPI["adapters.WithModule"] != 1 {
		t.Fatalf("status: %v %+v\n%s", err, st, out)
	}
	if out, err := run(t, "migrate", "--apply", "-C", dir); err != nil || !strings.Contains(out, "rewrote 1 file(s)") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if now, _ := os.ReadFile(app); bytes.Contains(now, []byte("adapters.LMConfig")) {
		t.Fatalf("--apply left the alias:\n%s", now)
	}
}

// Arguments are one JSON object whose integers reach Python exactly: what follows the object
// (a quoting mistake) and an integer that fits neither int64 nor uint64 are errors, where the
// first was ignored and the second rounded through float64.
func TestCallArgumentsExact(t *testing.T) {
	for args, want := range map[string]string{
		`{"a": 1, "b": 2} {"a": 5}`:        "one JSON object",
		`{"a": 1, "b": 2} junk`:            "one JSON object",
		`{"value": 123456789012345678901}`: "does not fit in 64 bits",
		`{"value": [1e400]}`:               "out of float64's range",
	} {
		if _, err := run(t, "call", "echo", args); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("call echo %s: %v, want an error saying %q", args, err, want)
		}
	}
	out, err := run(t, "call", "echo", `{"value": [12345678901234567890, -9223372036854775808, 1.5]}`+" \n")
	if err != nil || strings.TrimSpace(out) != "[12345678901234567890,-9223372036854775808,1.5]" {
		t.Fatalf("call echo: %q %v", out, err)
	}
}

// What JSON cannot spell reaches stdout as Python's json module spells it, in strings: a
// dict key that is not a string, and NaN/±Inf. `call` failed on both after the call had
// succeeded (the map's keys did not even decode).
func TestCallPrintsWhatJSONCannotSpell(t *testing.T) {
	dir := t.TempDir()
	bridge := `from mlbridge_worker import BaseBridge, handler

class Odd(BaseBridge):
    def _initialize_framework(self) -> None:
        pass

    def get_framework_info(self) -> dict:
        return {"name": "odd", "version": "1", "capabilities": []}

    @handler
    def odd(self) -> dict:
        return {"labels": {0: "setosa", 1: "versicolor"}, "nan": float("nan"), "inf": [float("inf"), float("-inf"), 1.5]}
`
	if err := os.WriteFile(filepath.Join(dir, "oddbridge.py"), []byte(bridge), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PYTHONPATH", dir) // the host's PYTHONPATH reaches the worker
	out, err := run(t, "--bridge", "oddbridge:Odd", "call", "odd")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %q: %v", out, err)
	}
	want := `{"inf":["Infinity","-Infinity",1.5],"labels":{"0":"setosa","1":"versicolor"},"nan":"NaN"}`
	if b, _ := json.Marshal(got); string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
}
