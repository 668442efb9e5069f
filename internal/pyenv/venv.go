package pyenv

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// VenvPython is the interpreter of the virtual environment at dir.
func VenvPython(dir string) string {
	if runtime.GOOS == "windows" {
		return filepath.Join(dir, "Scripts", "python.exe")
	}
	return filepath.Join(dir, "bin", "python")
}

// IsVenv reports whether dir holds a virtual environment (its pyvenv.cfg and interpreter).
func IsVenv(dir string) bool {
	_, err1 := os.Stat(filepath.Join(dir, "pyvenv.cfg"))
	_, err2 := os.Stat(VenvPython(dir))
	return err1 == nil && err2 == nil
}

// VenvOf returns the virtual environment the interpreter python belongs to, or "".
func VenvOf(python string) string {
	dir := filepath.Dir(filepath.Dir(python))
	if _, err := os.Stat(filepath.Join(dir, "pyvenv.cfg")); err == nil {
		return dir
	}
	return ""
}

// basePython is the interpreter a new environment is made from: explicit, else python3.11,
// python3 or python on PATH.
func basePython(explicit string) (string, error) {
	if explicit != "" {
		p, err := exec.LookPath(explicit)
		if err != nil {
			return "", fmt.Errorf("%w: %q: %v", ErrNoPython, explicit, err)
		}
		return filepath.Abs(p)
	}
	for _, name := range []string{"python3.11", "python3", "python"} {
		if p, err := exec.LookPath(name); err == nil {
			return filepath.Abs(p)
		}
	}
	return "", fmt.Errorf("%w: no python3.11, python3 or python on PATH; install Python 3.11+ or pass --python", ErrNoPython)
}

// createVenv makes a virtual environment at dir from base: with uv when there is one
// (no pip in it: uv installs), else with the venv module (pip bootstrapped by ensurepip).
func (s *setup) createVenv(ctx context.Context, base string) error {
	if st, err := os.Stat(s.opts.Venv); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s exists and is not a directory", s.opts.Venv)
		}
		if entries, _ := os.ReadDir(s.opts.Venv); len(entries) > 0 {
			return fmt.Errorf("%s exists and is not a virtual environment (no pyvenv.cfg); remove it or choose another --venv", s.opts.Venv)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	s.printf("creating the virtual environment %s (%s)\n", s.opts.Venv, base)
	if s.uv != "" {
		return s.run(ctx, "creating "+s.opts.Venv, exec.CommandContext(ctx, s.uv, "venv", "--quiet", "--python", base, s.opts.Venv))
	}
	if err := s.run(ctx, "creating "+s.opts.Venv, exec.CommandContext(ctx, base, "-m", "venv", s.opts.Venv)); err != nil {
		// Debian's python3 without python3-venv has no ensurepip: make the environment
		// without pip and say what is missing if pip cannot be had either.
		_ = os.RemoveAll(s.opts.Venv)
		if err2 := s.run(ctx, "creating "+s.opts.Venv, exec.CommandContext(ctx, base, "-m", "venv", "--without-pip", s.opts.Venv)); err2 != nil {
			return err
		}
	}
	return nil
}

// ensurePip makes sure python -m pip works, with ensurepip if needed.
func (s *setup) ensurePip(ctx context.Context, python string) error {
	if exec.CommandContext(ctx, python, "-m", "pip", "--version").Run() == nil {
		return nil
	}
	s.printf("bootstrapping pip with ensurepip\n")
	if err := s.run(ctx, "bootstrapping pip", exec.CommandContext(ctx, python, "-m", "ensurepip", "--upgrade")); err != nil {
		return fmt.Errorf("%s has no pip and ensurepip failed (on Debian/Ubuntu: apt install python3-venv; or install uv): %w", python, err)
	}
	return nil
}
