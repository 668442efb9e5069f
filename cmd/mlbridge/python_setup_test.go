package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge/internal/pyenv"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// setupCmd runs `mlbridge args...` and returns its stdout and stderr apart.
func setupCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// repoUV is the uv ./scripts/bootstrap installs; its cache makes fresh installs quick.
func repoUV(t *testing.T) string {
	t.Helper()
	uv := filepath.Join(testenv.Root(), ".tools", "uv", "bin", "uv")
	if _, err := os.Stat(uv); err != nil {
		t.Skipf("no %s: run ./scripts/bootstrap", uv)
	}
	return uv
}

func TestPythonSetupUnknownExtra(t *testing.T) {
	_, _, err := setupCmd(t, "python", "setup", "--venv", t.TempDir(), "--extras", "sklearn,torch")
	if !errors.Is(err, pyenv.ErrUnknownExtra) {
		t.Fatalf("unknown extra: %v", err)
	}
	for _, known := range []string{`"torch"`, "dspy", "langchain", "local", "sklearn", "all"} {
		if !strings.Contains(err.Error(), known) {
			t.Errorf("error %q does not name %s", err, known)
		}
	}
	if _, _, err := setupCmd(t, "python", "setup", "sklearn"); err == nil || !strings.Contains(err.Error(), "--extras") {
		t.Errorf("a positional extra: %v", err)
	}
	if _, _, err := setupCmd(t, "python", "setup", "--installer", "pip", "--lock", "uv.lock"); err == nil || !strings.Contains(err.Error(), "needs uv") {
		t.Errorf("--lock with pip: %v", err)
	}
}

// A fresh environment with the sklearn extra, through uv and its cache; the packages import
// afterwards, and a second run installs nothing and starts no installer.
func TestPythonSetupFreshVenv(t *testing.T) {
	if testing.Short() {
		t.Skip("creates a virtual environment")
	}
	uv := repoUV(t)
	venv := filepath.Join(t.TempDir(), "env")
	args := []string{"python", "setup", "--venv", venv, "--extras", "sklearn", "--uv", uv}
	stdout, stderr, err := setupCmd(t, args...)
	if err != nil {
		t.Fatalf("first run: %v\n%s", err, stderr)
	}
	python := pyenv.VenvPython(venv)
	if strings.TrimSpace(stdout) != python {
		t.Fatalf("stdout %q, want the interpreter %s", stdout, python)
	}
	if !strings.Contains(stderr, "creating the virtual environment") || !strings.Contains(stderr, "scikit-learn") {
		t.Fatalf("first run's progress does not say what it did:\n%s", stderr)
	}
	out, err := exec.Command(python, "-c", "import msgpack, sklearn, numpy; print(sklearn.__version__)").CombinedOutput()
	if err != nil {
		t.Fatalf("packages do not import: %v\n%s", err, out)
	}

	start := time.Now()
	stdout, stderr, err = setupCmd(t, args...)
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "nothing to install") || strings.Contains(stderr, "installing") {
		t.Fatalf("second run was not a no-op:\n%s", stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second run took %v", d)
	}
	if strings.TrimSpace(stdout) != python {
		t.Errorf("second run's stdout %q", stdout)
	}
}

// Without uv: python -m venv (pip from ensurepip) and pip install, the runtime only.
func TestPythonSetupPip(t *testing.T) {
	if testing.Short() {
		t.Skip("creates a virtual environment and installs from the package index")
	}
	venv := filepath.Join(t.TempDir(), "env")
	args := []string{"python", "setup", "--venv", venv, "--installer", "pip"}
	if _, stderr, err := setupCmd(t, args...); err != nil {
		t.Fatalf("pip setup: %v\n%s", err, stderr)
	}
	if out, err := exec.Command(pyenv.VenvPython(venv), "-c", "import msgpack").CombinedOutput(); err != nil {
		t.Fatalf("msgpack does not import: %v\n%s", err, out)
	}
	if _, stderr, err := setupCmd(t, args...); err != nil || !strings.Contains(stderr, "nothing to install") {
		t.Fatalf("second pip run: %v\n%s", err, stderr)
	}
}

// The repository's own environment (./scripts/bootstrap's path): a frozen sync from
// python/uv.lock that finds nothing to change.
func TestPythonSetupLockIsNoOp(t *testing.T) {
	uv := repoUV(t)
	root := testenv.Root()
	venv := filepath.Join(root, ".venv")
	if !pyenv.IsVenv(venv) {
		t.Skip("no .venv: run ./scripts/bootstrap")
	}
	_, stderr, err := setupCmd(t, "python", "setup", "--venv", venv, "--lock", filepath.Join(root, "python", "uv.lock"),
		"--extras", "all", "--uv", uv, "--", "--dry-run")
	if err != nil {
		t.Fatalf("lock sync: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "Would make no changes") {
		t.Fatalf("the frozen sync of the bootstrapped .venv would change it:\n%s", stderr)
	}
}
