package worker

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge/internal/errs"
	"github.com/mlbridge/mlbridge/internal/testenv"
	pyruntime "github.com/mlbridge/mlbridge/python"
)

// A worker that dies importing msgpack is told the exact command that installs it; one that
// dies on another module (a legacy script's own import) is not blamed on the runtime.
func TestMissingPackage(t *testing.T) {
	cause := errors.New("exit 1")
	err := missingPackage("/venv/bin/python", []string{
		"Traceback (most recent call last):",
		"ModuleNotFoundError: No module named 'msgpack'",
	}, cause)
	want := "interpreter /venv/bin/python lacks msgpack: run `/venv/bin/python -m pip install msgpack` " +
		"(or `uv pip install --python /venv/bin/python msgpack`)"
	if !errors.Is(err, errs.ErrWorkerPackageMissing) || !errors.Is(err, cause) || !strings.Contains(err.Error(), want) {
		t.Errorf("msgpack: %v", err)
	}
	err = missingPackage("/p", []string{"ModuleNotFoundError: No module named 'mlbridge_worker'"}, cause)
	if !errors.Is(err, errs.ErrWorkerPackageMissing) || !strings.Contains(err.Error(), "-I") {
		t.Errorf("runtime: %v", err)
	}
	if err := missingPackage("/p", []string{"ModuleNotFoundError: No module named 'dspy'"}, cause); err != nil {
		t.Errorf("a bridge's import: %v", err)
	}
}

// Every command a worker of any kind starts with has the embedded runtime first on its
// PYTHONPATH, ahead of Config.PythonPath and the host's, and imports it from there.
func TestCommandPutsRuntimeFirst(t *testing.T) {
	t.Setenv("PYTHONPATH", "/host/lib")
	app := t.TempDir()
	cmd, err := Command(context.Background(), Config{Python: testenv.Python(t), PythonPath: []string{app}},
		"-c", "import mlbridge_worker; print(mlbridge_worker.__file__)")
	if err != nil {
		t.Fatal(err)
	}
	runtime, err := pyruntime.Dir()
	if err != nil {
		t.Fatal(err)
	}
	want := "PYTHONPATH=" + strings.Join([]string{runtime, app, "/host/lib"}, string(filepath.ListSeparator))
	if !slices.Contains(cmd.Env, want) {
		t.Errorf("want %s in %v", want, cmd.Env)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, exitStderr(err))
	}
	if got := strings.TrimSpace(string(out)); got != filepath.Join(runtime, pyruntime.Package, "__init__.py") {
		t.Errorf("imported %s, not the embedded runtime in %s", got, runtime)
	}
}

func exitStderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}
