package worker

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/mlbridge/mlbridge/internal/errs"
)

// ResolvePython finds the interpreter, in order: explicit, $MLBRIDGE_PYTHON, .venv in dir
// (or the current directory), python3 on PATH.
func ResolvePython(explicit, dir string) (string, error) {
	if explicit != "" {
		return lookExecutable(explicit, "the configured interpreter")
	}
	if env := os.Getenv("MLBRIDGE_PYTHON"); env != "" {
		return lookExecutable(env, "$MLBRIDGE_PYTHON")
	}
	if dir == "" {
		dir, _ = os.Getwd()
	}
	venv := filepath.Join(dir, ".venv", "bin", "python")
	if st, err := os.Stat(venv); err == nil && !st.IsDir() {
		return venv, nil
	}
	if p, err := exec.LookPath("python3"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: no explicit interpreter, $MLBRIDGE_PYTHON unset, no %s, no python3 on PATH; "+
		"install Python 3.11+ and the worker package (pip install mlbridge-worker), or set MLBRIDGE_PYTHON",
		errs.ErrPythonNotFound, venv)
}

// lookExecutable finds path (a name on PATH, or a path relative to the host's working
// directory) and makes it absolute: the worker runs in Config.Dir and its lifeline guardian
// in "/", where a relative path would name another file or none.
func lookExecutable(path, what string) (string, error) {
	p, err := exec.LookPath(path)
	if err == nil {
		p, err = filepath.Abs(p)
	}
	if err != nil {
		return "", fmt.Errorf("%w: %s %q: %v", errs.ErrPythonNotFound, what, path, err)
	}
	return p, nil
}
