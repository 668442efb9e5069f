package worker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/mlbridge/mlbridge/internal/errs"
	pyruntime "github.com/mlbridge/mlbridge/python"
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
		"install Python 3.11+ with msgpack (the worker runtime ships with the Go module), or set MLBRIDGE_PYTHON",
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

var runtimeUnwritable sync.Once

// Command is the command that runs cfg's interpreter with args the way a worker of cfg runs:
// the interpreter resolved (ResolvePython), in Dir, with the worker's environment (env.go)
// and PYTHONPATH: the embedded runtime first (package pyruntime: the mlbridge_worker of
// this very build, whatever the interpreter has installed), then PythonPath, then the
// host's. Workers, the zygote, legacy Args entry points and doctor's probe all start here.
// Relative paths of a Config — Python, Dir, PythonPath — resolve against the host's working
// directory: Dir and PythonPath are made absolute here, since the worker runs in Dir, where
// Python would resolve a relative PYTHONPATH entry against Dir instead. A Dir that does not
// exist is an ErrInvalidConfiguration naming it, not a missing interpreter (which is what
// exec reports for a missing working directory).
func Command(ctx context.Context, cfg Config, args ...string) (*exec.Cmd, error) {
	dir := cfg.Dir
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, fmt.Errorf("%w: dir %q: %v", errs.ErrInvalidConfiguration, dir, err)
		}
		st, err := os.Stat(abs)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("%w: dir %q does not exist (the worker's working directory, Config.Dir or dir:)",
				errs.ErrInvalidConfiguration, abs)
		case err != nil:
			return nil, fmt.Errorf("%w: dir %q: %v", errs.ErrInvalidConfiguration, abs, err)
		case !st.IsDir():
			return nil, fmt.Errorf("%w: dir %q is not a directory", errs.ErrInvalidConfiguration, abs)
		}
		dir = abs
	}
	pythonPath := make([]string, 0, len(cfg.PythonPath))
	for _, p := range cfg.PythonPath {
		if p == "" {
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("%w: pythonpath entry %q: %v", errs.ErrInvalidConfiguration, p, err)
		}
		pythonPath = append(pythonPath, abs)
	}
	python, err := ResolvePython(cfg.Python, dir)
	if err != nil {
		return nil, err
	}
	// With no writable place for the runtime (a read-only filesystem, no home, no private
	// temporary directory), a worker can still run the mlbridge_worker the interpreter has
	// installed (the wheel): said once, and the handshake reports a missing package.
	if runtimeDir, err := pyruntime.Dir(); err == nil {
		pythonPath = append([]string{runtimeDir}, pythonPath...)
	} else {
		runtimeUnwritable.Do(func() {
			log := cfg.Logger
			if log == nil {
				log = slog.Default()
			}
			log.Warn("mlbridge: the Python worker runtime cannot be written; workers use the mlbridge_worker "+
				"their interpreter has installed (set "+pyruntime.CacheDirEnv+" to a writable directory)", "err", err)
		})
	}
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Dir = dir
	cmd.Env = withPythonPath(buildEnv(os.Environ(), cfg.EnvAllow, cfg.Env), pythonPath)
	return cmd, nil
}
