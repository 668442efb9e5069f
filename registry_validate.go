package mlbridge

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

var (
	bridgeNameRE  = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	bridgeClassRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$`)
	pyVersionRE   = regexp.MustCompile(`^3\.\d+$`)
	envNameRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	envPatternRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*\*?$`)
	moduleRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)
)

// maxFrameLimit is the wire's: a frame's length is a 4-byte prefix.
const maxFrameLimit = 1<<32 - 1

// Validate checks the configuration without starting anything; every problem is reported,
// each naming its bridge and key. A configuration without bridges is valid (bridges can be
// registered in code).
func (c RegistryConfig) Validate() error {
	var errs []error
	if c.Default != "" {
		if _, ok := c.Bridges[c.Default]; !ok {
			errs = append(errs, fmt.Errorf("default names %q, which is not a declared bridge", c.Default))
		}
	}
	if msg := unexpandedPath("python", c.Python); msg != "" {
		errs = append(errs, errors.New(msg))
	}
	for _, name := range slices.Sorted(maps.Keys(c.Bridges)) {
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
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if !bridgeNameRE.MatchString(name) {
		add("the name must be lower case letters, digits, - and _")
	}
	switch {
	case b.Remote != nil:
		b.validateRemote(add)
	case b.Bridge == "" && b.Script == "":
		add("needs bridge (module:Class) or script")
	case b.Bridge != "" && b.Script != "":
		add("has both bridge and script; choose one")
	case b.Bridge != "" && !bridgeClassRE.MatchString(b.Bridge):
		add("bridge %q is not module:Class", b.Bridge)
	}
	if b.Mode != "" && b.Mode != "pool" && b.Mode != "process" {
		add("mode %q is not pool or process", b.Mode)
	}
	if b.Workers < 0 || (b.Mode == "process" && b.Workers > 1) {
		add("workers %d does not fit mode %q", b.Workers, cmp.Or(b.Mode, "pool"))
	}
	for _, kv := range []struct {
		key string
		v   int64
	}{
		{"threads", int64(b.Threads)}, {"max_in_flight", int64(b.MaxInFlight)},
		{"max_frame", int64(b.MaxFrame)}, {"max_stream_buffer", int64(b.MaxStreamBuffer)},
		{"idle_spin", int64(b.IdleSpin)}, {"start_timeout", int64(b.StartTimeout)},
		{"liveness_timeout", int64(b.LivenessTimeout)}, {"heartbeat_timeout", int64(b.HeartbeatTimeout)},
		{"shutdown_grace", int64(b.ShutdownGrace)}, {"queue_size", int64(b.QueueSize)},
		{"call_timeout", int64(b.CallTimeout)}, {"max_age", int64(b.MaxAge)}, {"max_rss", int64(b.MaxRSS)},
		{"health_interval", int64(b.HealthInterval)}, {"drain_timeout", int64(b.DrainTimeout)},
		{"restart_backoff", int64(b.RestartBackoff)}, {"max_restart_backoff", int64(b.MaxRestartBackoff)},
		{"crash_loop_threshold", int64(b.CrashLoopThreshold)}, {"crash_loop_window", int64(b.CrashLoopWindow)},
		{"crash_loop_cooldown", int64(b.CrashLoopCooldown)}, {"min_size", int64(b.MinSize)},
		{"max_size", int64(b.MaxSize)}, {"scale_down_idle", int64(b.ScaleDownIdle)},
	} {
		if kv.v < 0 {
			add("%s cannot be negative", kv.key)
		}
	}
	for op, bc := range b.Batching {
		switch {
		case b.Mode == "process":
			add("batching does not apply to mode process (a pool batches)")
		case bc.MaxSize < 0 || bc.MaxWait < 0:
			add("batching of %q: max_size and max_wait cannot be negative", op)
		}
	}
	if b.MinSize > 0 || b.MaxSize > 0 {
		switch {
		case b.Mode == "process":
			add("min_size and max_size do not apply to mode process")
		case b.MaxSize > 0 && b.MinSize > b.MaxSize:
			add("min_size %d is above max_size %d", b.MinSize, b.MaxSize)
		case b.Workers > 0 && (b.Workers < max(b.MinSize, 1) || (b.MaxSize > 0 && b.Workers > b.MaxSize)):
			add("workers %d (the starting size) is not within min_size %d and max_size %d", b.Workers, max(b.MinSize, 1), b.MaxSize)
		}
	}
	if b.MaxFrame > maxFrameLimit {
		add("max_frame %s is over the wire's limit of 4GiB-1", b.MaxFrame)
	}
	if b.RestartBackoff > 0 && b.MaxRestartBackoff > 0 && b.MaxRestartBackoff < b.RestartBackoff {
		add("max_restart_backoff %s is below restart_backoff %s", b.MaxRestartBackoff, b.RestartBackoff)
	}
	if b.MinPython != "" && !pyVersionRE.MatchString(b.MinPython) {
		add("min_python %q is not like 3.11", b.MinPython)
	}
	for _, e := range b.Env {
		if !envNameRE.MatchString(e) {
			add("env %q is not a variable name", e)
		}
	}
	for _, e := range b.EnvAllow {
		if !envPatternRE.MatchString(e) {
			add("env_allow %q is not a variable name or PREFIX_*", e)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(b.EnvValues)) {
		if !envNameRE.MatchString(k) {
			add("env_values %q is not a variable name", k)
		}
	}
	for _, m := range b.Packages {
		if !moduleRE.MatchString(m) {
			add("package %q is not an import name", m)
		}
	}
	for _, p := range b.PythonPath {
		if p == "" {
			add("pythonpath has an empty entry")
		}
	}
	for _, kv := range [][2]string{{"python", b.Python}, {"dir", b.Dir}, {"script", b.Script}} {
		if msg := unexpandedPath(kv[0], kv[1]); msg != "" {
			add("%s", msg)
		}
	}
	for _, p := range b.PythonPath {
		if msg := unexpandedPath("pythonpath", p); msg != "" {
			add("%s", msg)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("bridge %q: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

// unexpandedPath says why path p of key cannot be meant as written: the configuration
// expands neither variables nor ~, so "${HOME}/venv/bin/python" was read as a directory
// named "${HOME}" next to the file, and the error was that no interpreter is there.
func unexpandedPath(key, p string) string {
	if strings.HasPrefix(p, "~") || strings.Contains(p, "${") || strings.HasPrefix(p, "$") {
		return fmt.Sprintf("%s %q: paths are not expanded (no $VARIABLE, no ~): write the path, absolute or relative to the configuration file", key, p)
	}
	return ""
}
