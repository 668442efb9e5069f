package worker

import (
	"slices"
	"testing"
)

// PythonPath entries come first, then the PYTHONPATH the worker would have had (the host's,
// passed through, or one set by Config.Env).
func TestWithPythonPath(t *testing.T) {
	host := []string{"PATH=/bin", "PYTHONPATH=/host/lib", "SECRET=x"}
	env := withPythonPath(buildEnv(host, nil, nil), []string{"/app/a", "/app/b"})
	if !slices.Contains(env, "PYTHONPATH=/app/a:/app/b:/host/lib") || slices.Contains(env, "SECRET=x") {
		t.Errorf("with the host's PYTHONPATH: %v", env)
	}
	env = withPythonPath(buildEnv([]string{"PATH=/bin"}, nil, []string{"PYTHONPATH=/set"}), []string{"/app"})
	if !slices.Contains(env, "PYTHONPATH=/app:/set") {
		t.Errorf("with Config.Env's PYTHONPATH: %v", env)
	}
	env = withPythonPath(buildEnv([]string{"PATH=/bin"}, nil, nil), []string{"/app"})
	if !slices.Contains(env, "PYTHONPATH=/app") {
		t.Errorf("without one: %v", env)
	}
}
