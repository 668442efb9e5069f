package mlbridge_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
)

// everyKey sets every key a bridge has, each to a value other than its default.
const everyKey = `python: /usr/bin/python3
bridges:
  full:
    bridge: mybridge:MyBridge
    mode: pool
    options: {greeting: hi}
    env: [MY_API_KEY]
    env_allow: [HF_*]
    env_values: {TOKENIZERS_PARALLELISM: "false", B_VAR: "x=y"}
    packages: [numpy]
    min_python: "3.11"
    python: .venv/bin/python
    pythonpath: [python, /opt/shared]
    dir: work
    threads: 3
    max_in_flight: 7
    max_frame: 16MiB
    max_stream_buffer: 1048576
    idle_spin: 50us
    start_timeout: 90s
    heartbeat_interval: 200ms
    liveness_timeout: 3s
    heartbeat_timeout: 20s
    shutdown_grace: 4s
    workers: 3
    min_size: 2
    max_size: 6
    scale_down_idle: 45s
    queue_size: 99
    batching: {predict: {max_size: 16, max_wait: 5ms}, transform: {off: true}}
    call_timeout: 2m
    preload: false
    max_requests: 1000
    max_age: 1h
    max_rss: 2GiB
    health_interval: 5s
    drain_timeout: 45s
    restart_backoff: 250ms
    max_restart_backoff: 20s
    crash_loop_threshold: 8
    crash_loop_window: 2m
    crash_loop_cooldown: 15s
`

// Every key of a bridge reaches the PoolConfig the registry starts it with, and relative
// paths of a file resolve against the file's directory.
func TestRegistryEveryKeyToPoolConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mlbridge.yaml")
	if err := os.WriteFile(path, []byte(everyKey), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := mlbridge.OpenRegistry(path, mlbridge.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.PoolConfig("full")
	if err != nil {
		t.Fatal(err)
	}
	want := mlbridge.PoolConfig{
		Config: mlbridge.Config{
			Bridge: "mybridge:MyBridge", Python: filepath.Join(dir, ".venv/bin/python"),
			Dir: filepath.Join(dir, "work"), PythonPath: []string{filepath.Join(dir, "python"), "/opt/shared"},
			Env:      []string{"B_VAR=x=y", "TOKENIZERS_PARALLELISM=false"},
			EnvAllow: []string{"MY_API_KEY", "HF_*"},
			Threads:  3, MaxInFlight: 7, MaxFrame: 16 << 20, MaxStreamBuffer: 1 << 20,
			IdleSpin: 50 * time.Microsecond, HandshakeTimeout: 90 * time.Second,
			HeartbeatInterval: 200 * time.Millisecond, LivenessTimeout: 3 * time.Second,
			HeartbeatTimeout: 20 * time.Second, ShutdownGrace: 4 * time.Second,
		},
		Size: 3, MinSize: 2, MaxSize: 6, ScaleDownIdle: 45 * time.Second, QueueSize: 99, MaxRequests: 1000, MaxAge: time.Hour, MaxRSS: 2 << 30,
		HealthInterval: 5 * time.Second, DrainTimeout: 45 * time.Second,
		RestartBackoff: 250 * time.Millisecond, MaxRestartBackoff: 20 * time.Second,
		CrashLoopThreshold: 8, CrashLoopWindow: 2 * time.Minute, CrashLoopCooldown: 15 * time.Second,
		CallTimeout: 2 * time.Minute, Preload: false, Name: "full",
		Batching: map[string]mlbridge.BatchPolicy{"predict": {MaxSize: 16, MaxWait: 5 * time.Millisecond}, "transform": {Off: true}},
	}
	if got.Logger == nil {
		t.Error("no logger")
	}
	got.Logger = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pool config:\n got %+v\nwant %+v", got, want)
	}

	// Unset keys leave every setting at zero: OpenPool's and the worker's defaults apply.
	// Registry defaults stay: 2 workers, preloaded; process mode is one worker.
	r, err = mlbridge.NewRegistry(mlbridge.RegistryConfig{Bridges: map[string]mlbridge.BridgeConfig{
		"min": {Bridge: "a.b:C"}, "proc": {Bridge: "a.b:C", Mode: "process"},
	}}, mlbridge.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	minimal, _ := r.PoolConfig("min")
	minimal.Logger = nil
	if want := (mlbridge.PoolConfig{Config: mlbridge.Config{Bridge: "a.b:C"}, Size: 2, Preload: true, Name: "min"}); !reflect.DeepEqual(minimal, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", minimal, want)
	}
	if proc, _ := r.PoolConfig("proc"); proc.Size != 1 || proc.Preload {
		t.Errorf("process mode: size %d preload %v", proc.Size, proc.Preload)
	}
	if _, err := r.PoolConfig("nope"); !errors.Is(err, mlbridge.ErrUnknownBridge) {
		t.Errorf("unknown bridge: %v", err)
	}
}

// Relative paths of a configuration parsed without a file, or built in code, are left for
// the host's working directory; a bare interpreter name stays a PATH lookup in a file too.
func TestRegistryRelativePathsBase(t *testing.T) {
	yaml := "python: python3\nbridges:\n  b:\n    bridge: a.b:C\n    pythonpath: [lib]\n    dir: work\n"
	cfg, err := mlbridge.ParseRegistryConfig([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if b := cfg.Bridges["b"]; b.Dir != "work" || !slices.Equal(b.PythonPath, []string{"lib"}) || cfg.Python != "python3" {
		t.Errorf("parsed without a file: %+v", cfg)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "m.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err = mlbridge.LoadRegistryConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if b := cfg.Bridges["b"]; b.Dir != filepath.Join(dir, "work") || b.PythonPath[0] != filepath.Join(dir, "lib") || cfg.Python != "python3" {
		t.Errorf("loaded from %s: %+v", dir, cfg)
	}
}

// Errors name the bridge and the key; unknown keys stay errors.
func TestRegistryConfigErrorsNameBridgeAndKey(t *testing.T) {
	cases := map[string]struct{ yaml, want string }{
		"unknown key":     {"bridges:\n  echo:\n    bridge: a.b:C\n    wokers: 2\n", `bridge "echo": unknown key "wokers" (line 4)`},
		"unknown top key": {"bridgez: {}\n", `unknown key "bridgez" (line 1)`},
		"bad duration":    {"bridges:\n  echo:\n    bridge: a.b:C\n    max_age: soon\n", `bridge "echo": max_age: "soon" is not a duration`},
		"bad size":        {"bridges:\n  echo:\n    bridge: a.b:C\n    max_rss: 2G\n", `bridge "echo": max_rss: "2G" is not a size like 2GiB`},
		"bad int":         {"bridges:\n  e:\n    bridge: a.b:C\n    queue_size: lots\n", `bridge "e": queue_size: cannot unmarshal`},
		"negative":        {"bridges:\n  echo:\n    bridge: a.b:C\n    queue_size: -1\n    drain_timeout: -1s\n", `bridge "echo": queue_size cannot be negative; drain_timeout cannot be negative`},
		"env value name":  {"bridges:\n  echo:\n    bridge: a.b:C\n    env_values: {\"A B\": x}\n", `bridge "echo": env_values "A B" is not a variable name`},
		"frame too big":   {"bridges:\n  echo:\n    bridge: a.b:C\n    max_frame: 5GiB\n", `bridge "echo": max_frame 5GiB is over`},
		"min above max":   {"bridges:\n  e:\n    bridge: a.b:C\n    min_size: 3\n    max_size: 2\n", `bridge "e": min_size 3 is above max_size 2`},
		"start outside":   {"bridges:\n  e:\n    bridge: a.b:C\n    min_size: 2\n    max_size: 4\n    workers: 5\n", `bridge "e": workers 5 (the starting size) is not within min_size 2 and max_size 4`},
		"scale process":   {"bridges:\n  e:\n    bridge: a.b:C\n    mode: process\n    max_size: 4\n", `bridge "e": min_size and max_size do not apply to mode process`},
		"batch negative":  {"bridges:\n  e:\n    bridge: a.b:C\n    batching: {predict: {max_size: -2}}\n", `bridge "e": batching of "predict": max_size and max_wait cannot be negative`},
		"batch process":   {"bridges:\n  e:\n    bridge: a.b:C\n    mode: process\n    batching: {predict: {off: true}}\n", `bridge "e": batching does not apply to mode process`},
		"batch key":       {"bridges:\n  e:\n    bridge: a.b:C\n    batching: {predict: {max_wiat: 1ms}}\n", `unknown key "max_wiat"`},
		"negative idle":   {"bridges:\n  e:\n    bridge: a.b:C\n    max_size: 4\n    scale_down_idle: -1s\n", `bridge "e": scale_down_idle cannot be negative`},
	}
	for name, c := range cases {
		_, err := mlbridge.ParseRegistryConfig([]byte(c.yaml))
		if !errors.Is(err, mlbridge.ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want ErrConfig containing %q", name, err, c.want)
		}
	}
}

func TestRegistryByteSize(t *testing.T) {
	for in, want := range map[string]mlbridge.ByteSize{
		"1048576": 1 << 20, "2GiB": 2 << 30, "512MiB": 512 << 20, "500MB": 500e6, "1.5GiB": 3 << 29,
		"4KiB": 4096, "10B": 10, "1 TiB": 1 << 40,
		// decimals that float64 arithmetic made non-whole (2009.9999999999998 bytes)
		"2.01KB": 2010, "1.07GB": 1_070_000_000, "9223372036854775807": 1<<63 - 1,
	} {
		if got, err := mlbridge.ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"2G", "2gb", "-1", "1.5B", "lots", "", "9223372036854775808", "8388608TiB"} {
		if got, err := mlbridge.ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", in, got)
		}
	}
	if s := mlbridge.ByteSize(2 << 30).String(); s != "2GiB" {
		t.Errorf("String: %s", s)
	}
}

// A registry with no bridges is valid; bridges are then registered in code.
func TestRegistryEmptyThenRegister(t *testing.T) {
	r, err := mlbridge.NewRegistry(mlbridge.RegistryConfig{}, mlbridge.RegistryOptions{})
	if err != nil {
		t.Fatalf("empty registry: %v", err)
	}
	if err := r.Register("mine", mlbridge.BridgeConfig{Bridge: "mybridge:MyBridge", MaxRSS: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if err := r.Register("bad", mlbridge.BridgeConfig{Bridge: "a.b:C", QueueSize: -1}); !errors.Is(err, mlbridge.ErrConfig) ||
		!strings.Contains(err.Error(), `bridge "bad": queue_size cannot be negative`) {
		t.Errorf("invalid registration: %v", err)
	}
	if got := r.Names(); !slices.Equal(got, []string{"mine"}) {
		t.Errorf("names: %v", got)
	}
	if pc, err := r.PoolConfig("mine"); err != nil || pc.MaxRSS != 1<<30 {
		t.Errorf("registered bridge: %+v %v", pc, err)
	}
}

// min_size / max_size without workers start the pool at min_size (Size 0 for OpenPool), and
// preload it as soon as it may grow past one worker.
func TestRegistryAutoscaleKeys(t *testing.T) {
	cfg, err := mlbridge.ParseRegistryConfig([]byte("bridges:\n  e:\n    bridge: a.b:C\n    max_size: 4\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := mlbridge.NewRegistry(cfg, mlbridge.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pc, _ := r.PoolConfig("e")
	if pc.Size != 0 || pc.MinSize != 0 || pc.MaxSize != 4 || !pc.Preload {
		t.Errorf("size %d min %d max %d preload %v", pc.Size, pc.MinSize, pc.MaxSize, pc.Preload)
	}
}
