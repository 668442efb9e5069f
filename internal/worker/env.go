package worker

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// baseEnv is passed through from the host by default: what an interpreter needs to run,
// nothing that usually holds a secret. OTEL_* configures OpenTelemetry the same way on both
// sides: a worker exports its spans where the host's settings say (docs/OBSERVABILITY.md).
// (OTEL_EXPORTER_OTLP_HEADERS may hold a collector token: it goes where the host's does.)
var baseEnv = []string{
	"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_*", "TZ", "TMPDIR",
	"SSL_CERT_FILE", "SSL_CERT_DIR", "PYTHONPATH", "MLBRIDGE_*", "OTEL_*",
}

// threadCaps keep numeric libraries to one thread per worker: N workers × M cores of
// BLAS threads each is how pools exhaust a machine's threads.
var threadCaps = []string{
	"OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1", "MKL_NUM_THREADS=1",
	"NUMEXPR_NUM_THREADS=1", "VECLIB_MAXIMUM_THREADS=1",
}

// Magic is the handshake cookie; a worker started without it refuses to run.
const Magic = "MLBRIDGE_MAGIC=mlbridge-worker-v1"

// buildEnv returns the worker's environment: the allowed host variables, the thread caps,
// the caller's extras (which win), and the protocol variables (which always win).
func buildEnv(host []string, allow []string, extra []string) []string {
	patterns := append(append([]string{}, baseEnv...), allow...)
	env := map[string]string{}
	var order []string
	set := func(kv string) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return
		}
		if _, seen := env[k]; !seen {
			order = append(order, k)
		}
		env[k] = v
	}
	for _, kv := range host {
		k, _, _ := strings.Cut(kv, "=")
		if matchAny(patterns, k) {
			set(kv)
		}
	}
	for _, kv := range threadCaps {
		set(kv)
	}
	set("PYTHONUNBUFFERED=1")
	for _, kv := range extra {
		set(kv)
	}
	set(Magic)
	set("MLBRIDGE_PARENT_PID=" + strconv.Itoa(os.Getpid()))
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+env[k])
	}
	return out
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(name, prefix) {
				return true
			}
		} else if p == name {
			return true
		}
	}
	return false
}

// Env is the environment a worker started with allow and extra would get (for probes that
// must see what the worker will see, such as `mlbridge doctor`).
func Env(allow, extra []string) []string { return buildEnv(os.Environ(), allow, extra) }

// withPythonPath prepends paths to env's PYTHONPATH (the host's, if passed through, or the
// one Config.Env sets): Command passes the embedded runtime, then the caller's own modules,
// so neither an installed mlbridge_worker nor the host's PYTHONPATH can shadow them.
func withPythonPath(env []string, paths []string) []string {
	if len(paths) == 0 {
		return env
	}
	value := strings.Join(paths, string(filepath.ListSeparator))
	for i, kv := range env {
		if old, ok := strings.CutPrefix(kv, "PYTHONPATH="); ok {
			if old != "" {
				value += string(filepath.ListSeparator) + old
			}
			out := append([]string{}, env...)
			out[i] = "PYTHONPATH=" + value
			return out
		}
	}
	return append(env, "PYTHONPATH="+value)
}
