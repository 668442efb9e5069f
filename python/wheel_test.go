package pyruntime_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// The worker package still builds as a wheel for teams that install with pip: built here
// with uv, installed with its dependencies into a clean environment, and run as a worker
// from that environment's site-packages.
func TestWheel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a wheel and a virtual environment")
	}
	root := testenv.Root()
	uv := filepath.Join(root, ".tools", "uv", "bin", "uv")
	if _, err := os.Stat(uv); err != nil {
		t.Skipf("no %s: run ./scripts/bootstrap", uv)
	}
	tmp := t.TempDir()
	run := func(dir, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "UV_PYTHON_DOWNLOADS=never")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
		}
		return string(out)
	}
	dist := filepath.Join(tmp, "dist")
	run(filepath.Join(root, "python"), uv, "build", "--wheel", "--quiet", "--out-dir", dist)
	wheels, _ := filepath.Glob(filepath.Join(dist, "mlbridge_worker-*-py3-none-any.whl"))
	if len(wheels) != 1 {
		t.Fatalf("wheels in %s: %v", dist, wheels)
	}
	venv := filepath.Join(tmp, "venv")
	python := filepath.Join(venv, "bin", "python")
	run(tmp, uv, "venv", "--quiet", "--python", testenv.Python(t), venv)
	run(tmp, uv, "pip", "install", "--quiet", "--python", python, wheels[0])

	// -I: only the environment's site-packages, not PYTHONPATH or the working directory.
	file := strings.TrimSpace(run(tmp, python, "-I", "-c", "import mlbridge_worker, msgpack; print(mlbridge_worker.__file__)"))
	if !strings.HasPrefix(file, filepath.Join(venv, "lib")) {
		t.Fatalf("mlbridge_worker imported from %s, not the environment's site-packages", file)
	}
	for _, f := range []string{"mlbridge_worker/frameworks/sklearn_bridge.py", "mlbridge_worker/echo.py"} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(file)), f)); err != nil {
			t.Errorf("the wheel lacks %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(venv, "bin", "mlbridge-worker")); err != nil {
		t.Errorf("the wheel's console script: %v", err)
	}

	// The worker from the wheel (isolated mode keeps the Go module's embedded copy, which
	// mlbridge puts first on PYTHONPATH, out of it), started and called through mlbridge.Open.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := mlbridge.Open(ctx, mlbridge.Config{
		Python: python,
		Dir:    tmp,
		Args:   []string{"-I", "-m", "mlbridge_worker", "--bridge", "mlbridge_worker.echo:EchoBridge"},
	})
	if err != nil {
		t.Fatalf("open a worker from the wheel: %v", err)
	}
	defer b.Close()
	res, err := b.Call(ctx, "add", map[string]any{"a": 40, "b": 2})
	var sum int
	if err == nil {
		err = res.Decode(&sum)
	}
	if err != nil || sum != 42 {
		t.Fatalf("add from the wheel's worker: %d, %v", sum, err)
	}
}
