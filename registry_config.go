package mlbridge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// RegistryConfig declares the bridges of a Registry; it is what mlbridge.yaml holds.
//
//	default: dspy
//	bridges:
//	  dspy:
//	    bridge: mlbridge_worker.frameworks.dspy_bridge:DSPyBridge
//	    workers: 2
//	    packages: [dspy, llama_cpp]
//	  mine:
//	    bridge: mybridge:MyBridge
//	    pythonpath: [python]      # relative to this file's directory
//	    max_rss: 2GiB
//	    env_values: {TOKENIZERS_PARALLELISM: "false"}
//
// Relative paths (python with a slash, pythonpath, dir, script) resolve against one base: the
// directory of the file for LoadRegistryConfig and OpenRegistry; the host process's working
// directory for a RegistryConfig built in code or by ParseRegistryConfig (as for Config).
// A python without a slash ("python3") is a command on PATH.
type RegistryConfig struct {
	// Default names the bridge Registry.Default returns (default: the only bridge, if one).
	Default string `yaml:"default"`
	// Python is the interpreter of every bridge that does not name its own.
	Python string `yaml:"python"`
	// Bridges by name. None is valid: bridges can be registered in code (Registry.Register).
	Bridges map[string]BridgeConfig `yaml:"bridges"`
}

// BridgeConfig declares one bridge: what it runs, the requirements Check verifies, and every
// setting of its Pool and workers. A zero value means the default of the PoolConfig or Config
// field it sets (named in each comment); see those for what the settings do.
type BridgeConfig struct {
	// Bridge is the Python bridge class, "module:Class".
	Bridge string `yaml:"bridge"`
	// Script is a legacy entry point run instead of Bridge (e.g. python/dspy_bridge.py); it is
	// started as `python SCRIPT --mode pool-worker --worker-id NAME`.
	Script string `yaml:"script"`
	// Mode is "pool" (default: Workers supervised processes) or "process" (one).
	Mode string `yaml:"mode"`
	// Remote declares a bridge served elsewhere, over NATS (RemoteBridge); it excludes Bridge
	// and Script, and the worker and pool keys do not apply.
	Remote *RemoteBridge `yaml:"remote"`
	// Options are free-form settings for the bridge: every worker receives them, before any
	// call, as the global resource "bridge_options" (BaseBridge.options in Python).
	Options map[string]any `yaml:"options"`

	// Requirements, checked before the bridge starts (Registry.Check, mlbridge doctor).
	//
	// Env names host variables the workers need (API keys...): they must be set, and are
	// passed through to the workers. EnvAllow (Config.EnvAllow) names more that are passed
	// through when set, without being required; "PREFIX_*" matches a prefix. EnvValues sets
	// variables in the workers' environment (Config.Env) and wins over the host's.
	Env       []string          `yaml:"env"`
	EnvAllow  []string          `yaml:"env_allow"`
	EnvValues map[string]string `yaml:"env_values"`
	// Packages are Python modules the bridge imports (import names: dspy, sklearn, llama_cpp).
	Packages []string `yaml:"packages"`
	// MinPython is the lowest Python version the bridge runs on, e.g. "3.11".
	MinPython string `yaml:"min_python"`

	// The interpreter and where it runs (Config.Python, Config.PythonPath, Config.Dir).
	// PythonPath lists the directories of your own bridge modules, prepended to PYTHONPATH.
	Python     string   `yaml:"python"`
	PythonPath []string `yaml:"pythonpath"`
	Dir        string   `yaml:"dir"`

	// Each worker (Config).
	Threads         int      `yaml:"threads"`           // Config.Threads (default 8)
	MaxInFlight     int      `yaml:"max_in_flight"`     // Config.MaxInFlight (default: the bridge's capacity)
	MaxFrame        ByteSize `yaml:"max_frame"`         // Config.MaxFrame (default 64MiB)
	MaxStreamBuffer ByteSize `yaml:"max_stream_buffer"` // Config.MaxStreamBuffer (default 64MiB)
	IdleSpin        Duration `yaml:"idle_spin"`         // Config.IdleSpin (default off)
	// StartTimeout bounds a worker's start: Config.HandshakeTimeout (default 60s).
	StartTimeout      Duration `yaml:"start_timeout"`
	HeartbeatInterval Duration `yaml:"heartbeat_interval"` // default 100ms; negative disables liveness
	LivenessTimeout   Duration `yaml:"liveness_timeout"`   // default 1.5s
	HeartbeatTimeout  Duration `yaml:"heartbeat_timeout"`  // default 10s
	ShutdownGrace     Duration `yaml:"shutdown_grace"`     // default 2s

	// The pool (PoolConfig).
	//
	// Workers is the pool size, PoolConfig.Size (default 2; 1 in process mode); with
	// min_size or max_size set, the starting size (default min_size).
	Workers int `yaml:"workers"`
	// Autoscaling (PoolConfig.MinSize, MaxSize, ScaleDownIdle): on when min_size or
	// max_size is set; not in process mode.
	MinSize       int      `yaml:"min_size"`        // default 1
	MaxSize       int      `yaml:"max_size"`        // default max(min_size, workers)
	ScaleDownIdle Duration `yaml:"scale_down_idle"` // default 30s
	QueueSize     int      `yaml:"queue_size"`      // default 1024
	// Batching overrides the batching the bridge declares, per op (PoolConfig.Batching):
	//   batching: {predict: {max_size: 16, max_wait: 5ms}, transform: {off: true}}
	Batching map[string]BatchingConfig `yaml:"batching"`
	// CallTimeout is the deadline of calls whose ctx has none (default none).
	CallTimeout Duration `yaml:"call_timeout"`
	// Preload forks workers from one interpreter that imported the bridge (default true
	// for pools of more than one worker; never with Script).
	Preload *bool `yaml:"preload"`
	// Recycling; zero disables each limit.
	MaxRequests uint64   `yaml:"max_requests"`
	MaxAge      Duration `yaml:"max_age"`
	MaxRSS      ByteSize `yaml:"max_rss"`
	// Supervision.
	HealthInterval     Duration `yaml:"health_interval"`      // default 2s
	DrainTimeout       Duration `yaml:"drain_timeout"`        // default 30s
	RestartBackoff     Duration `yaml:"restart_backoff"`      // default 100ms
	MaxRestartBackoff  Duration `yaml:"max_restart_backoff"`  // default 10s
	CrashLoopThreshold int      `yaml:"crash_loop_threshold"` // default 5
	CrashLoopWindow    Duration `yaml:"crash_loop_window"`    // default 1m
	CrashLoopCooldown  Duration `yaml:"crash_loop_cooldown"`  // default 5s
}

// BatchingConfig is one op's entry under a bridge's batching: (PoolConfig.Batching).
type BatchingConfig struct {
	MaxSize int      `yaml:"max_size"` // at most the bridge's (default: the bridge's)
	MaxWait Duration `yaml:"max_wait"` // default: the bridge's
	Off     bool     `yaml:"off"`      // serve the op call by call
}

// ErrConfig is matched by every error about a registry configuration. It also matches
// ErrInvalidConfiguration, the category of every other configuration error (a Config, a
// missing dir:, a bridge that fails to load), so one errors.Is covers them all.
var ErrConfig error = registryConfigError{}

type registryConfigError struct{}

func (registryConfigError) Error() string { return "mlbridge: invalid registry configuration" }
func (registryConfigError) Unwrap() error { return ErrInvalidConfiguration }

// LoadRegistryConfig reads and validates a registry configuration file (mlbridge.yaml).
// Relative paths in it resolve against the file's directory.
func LoadRegistryConfig(path string) (RegistryConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return RegistryConfig{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	cfg, err := ParseRegistryConfig(data)
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return cfg, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return cfg.resolvePaths(filepath.Dir(abs)), nil
}

// ParseRegistryConfig parses and validates YAML. Unknown keys are errors: a misspelt
// setting must not be silently ignored. Errors name the bridge and the key. Relative paths
// are left as they are (the host's working directory is their base).
func ParseRegistryConfig(data []byte) (RegistryConfig, error) {
	var cfg RegistryConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) { // the decoder's bare "EOF" says nothing to a reader
			return cfg, fmt.Errorf("%w: no YAML document, only whitespace or comments (a registry without bridges is \"bridges: {}\")", ErrConfig)
		}
		return cfg, fmt.Errorf("%w:\n%w", ErrConfig, explainYAML(data, err))
	}
	// A second document would be ignored, and the bridges it declares with it (an empty one,
	// a trailing ---, holds nothing to lose).
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return cfg, fmt.Errorf("%w:\n%w", ErrConfig, explainYAML(data, err))
		}
		if len(next.Content) > 0 && next.Content[0].Tag != "!!null" {
			return cfg, fmt.Errorf("%w: a second YAML document (line %d): the configuration is one document, without ---",
				ErrConfig, next.Content[0].Line)
		}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err == nil {
		// A merged (<<) mapping is walked once per merge: each message once.
		msgs := fractionalInts(&doc, reflect.TypeFor[RegistryConfig]())
		seen := map[string]bool{}
		msgs = slices.DeleteFunc(msgs, func(m string) bool { dup := seen[m]; seen[m] = true; return dup })
		if len(msgs) > 0 {
			return cfg, fmt.Errorf("%w:\n%w", ErrConfig, explainYAML(data, &yaml.TypeError{Errors: msgs}))
		}
	}
	return cfg, cfg.Validate()
}

// resolvePaths makes the relative paths of c absolute against base.
func (c RegistryConfig) resolvePaths(base string) RegistryConfig {
	c.Python = pythonAt(base, c.Python)
	bridges := make(map[string]BridgeConfig, len(c.Bridges))
	for name, b := range c.Bridges {
		b.Python = pythonAt(base, b.Python)
		b.Dir = pathAt(base, b.Dir)
		b.Script = pathAt(base, b.Script)
		if b.Remote != nil {
			r := *b.Remote // the caller's copy stays as it was
			r.Creds = pathAt(base, r.Creds)
			b.Remote = &r
		}
		pp := make([]string, len(b.PythonPath))
		for i, p := range b.PythonPath {
			pp[i] = pathAt(base, p)
		}
		if b.PythonPath != nil {
			b.PythonPath = pp
		}
		bridges[name] = b
	}
	if c.Bridges != nil {
		c.Bridges = bridges
	}
	return c
}

func pathAt(base, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}

// pythonAt resolves an interpreter path; a bare name ("python3") stays a PATH lookup.
func pythonAt(base, p string) string {
	if !strings.ContainsRune(p, filepath.Separator) {
		return p
	}
	return pathAt(base, p)
}
