package mlbridge

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

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
//	  sklearn:
//	    bridge: mlbridge_worker.frameworks.sklearn_bridge:SklearnBridge
//	    mode: process
type RegistryConfig struct {
	// Default names the bridge Registry.Default returns (default: the only bridge, if one).
	Default string `yaml:"default"`
	// Python is the interpreter of every bridge that does not name its own.
	Python string `yaml:"python"`
	// Bridges by name.
	Bridges map[string]BridgeConfig `yaml:"bridges"`
}

// BridgeConfig declares one bridge.
type BridgeConfig struct {
	// Bridge is the Python bridge class, "module:Class".
	Bridge string `yaml:"bridge"`
	// Script is a legacy entry point run instead of Bridge (e.g. python/dspy_bridge.py); it is
	// started as `python SCRIPT --mode pool-worker --worker-id NAME`.
	Script string `yaml:"script"`
	// Mode is "pool" (default: Workers supervised processes) or "process" (one).
	Mode string `yaml:"mode"`
	// Workers is the pool size (default 2; 1 in process mode).
	Workers int `yaml:"workers"`
	// MaxInFlight bounds concurrent calls per worker (default: what the bridge declares).
	MaxInFlight int `yaml:"max_in_flight"`
	// CallTimeout is the deadline of calls whose ctx has none; StartTimeout bounds a
	// worker's start (Go durations: "30s", "2m").
	CallTimeout  Duration `yaml:"call_timeout"`
	StartTimeout Duration `yaml:"start_timeout"`
	// Preload forks workers from one interpreter that imported the bridge (default true
	// for pools of more than one worker; never with Script).
	Preload *bool `yaml:"preload"`
	// Python is this bridge's interpreter.
	Python string `yaml:"python"`
	// Env names host variables the workers need (API keys...): they must be set, and are
	// passed through to the workers.
	Env []string `yaml:"env"`
	// Packages are Python modules the bridge imports (import names: dspy, sklearn, llama_cpp).
	Packages []string `yaml:"packages"`
	// MinPython is the lowest Python version the bridge runs on, e.g. "3.11".
	MinPython string `yaml:"min_python"`
	// Options are free-form settings for the bridge: every worker receives them, before any
	// call, as the global resource "bridge_options" (BaseBridge.options in Python).
	Options map[string]any `yaml:"options"`
}

// Duration is a time.Duration written as "30s" in YAML.
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 30s or 2m", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// ErrConfig is matched by every error about a registry configuration.
var ErrConfig = errors.New("mlbridge: invalid registry configuration")

// LoadRegistryConfig reads and validates a registry configuration file (mlbridge.yaml).
func LoadRegistryConfig(path string) (RegistryConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return RegistryConfig{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	cfg, err := ParseRegistryConfig(data)
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseRegistryConfig parses and validates YAML. Unknown keys are errors: a misspelt
// setting must not be silently ignored.
func ParseRegistryConfig(data []byte) (RegistryConfig, error) {
	var cfg RegistryConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return cfg, cfg.Validate()
}

var (
	bridgeNameRE  = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	bridgeClassRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$`)
	pyVersionRE   = regexp.MustCompile(`^3\.\d+$`)
	envNameRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	moduleRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)
)

// Validate checks the configuration without starting anything; every problem is reported.
func (c RegistryConfig) Validate() error {
	var errs []error
	if len(c.Bridges) == 0 {
		errs = append(errs, errors.New("no bridges declared"))
	}
	if c.Default != "" {
		if _, ok := c.Bridges[c.Default]; !ok {
			errs = append(errs, fmt.Errorf("default names %q, which is not a declared bridge", c.Default))
		}
	}
	names := make([]string, 0, len(c.Bridges))
	for name := range c.Bridges {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := c.Bridges[name].validate(name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w:\n%w", ErrConfig, err)
	}
	return nil
}

func (b BridgeConfig) validate(name string) error {
	var errs []string
	if !bridgeNameRE.MatchString(name) {
		errs = append(errs, "the name must be lower case letters, digits, - and _")
	}
	switch {
	case b.Bridge == "" && b.Script == "":
		errs = append(errs, "needs bridge (module:Class) or script")
	case b.Bridge != "" && b.Script != "":
		errs = append(errs, "has both bridge and script; choose one")
	case b.Bridge != "" && !bridgeClassRE.MatchString(b.Bridge):
		errs = append(errs, fmt.Sprintf("bridge %q is not module:Class", b.Bridge))
	}
	if b.Mode != "" && b.Mode != "pool" && b.Mode != "process" {
		errs = append(errs, fmt.Sprintf("mode %q is not pool or process", b.Mode))
	}
	if b.Workers < 0 || (b.Mode == "process" && b.Workers > 1) {
		errs = append(errs, fmt.Sprintf("workers %d does not fit mode %q", b.Workers, cmp.Or(b.Mode, "pool")))
	}
	if b.MaxInFlight < 0 || b.CallTimeout < 0 || b.StartTimeout < 0 {
		errs = append(errs, "max_in_flight and timeouts cannot be negative")
	}
	if b.MinPython != "" && !pyVersionRE.MatchString(b.MinPython) {
		errs = append(errs, fmt.Sprintf("min_python %q is not like 3.11", b.MinPython))
	}
	for _, e := range b.Env {
		if !envNameRE.MatchString(e) {
			errs = append(errs, fmt.Sprintf("env %q is not a variable name", e))
		}
	}
	for _, m := range b.Packages {
		if !moduleRE.MatchString(m) {
			errs = append(errs, fmt.Sprintf("package %q is not an import name", m))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("bridge %q: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

func (d Duration) String() string { return time.Duration(d).String() }
