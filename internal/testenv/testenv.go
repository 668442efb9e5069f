// Package testenv finds what the real Go↔Python tests need: the repository root and the
// project's Python interpreter (the .venv that ./scripts/bootstrap installs).
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Root is the repository root (the directory holding go.mod).
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Python returns the interpreter with mlbridge_worker installed: $MLBRIDGE_PYTHON, else
// the repository's .venv. It fails the test, never skips it: these tests are the point.
func Python(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MLBRIDGE_PYTHON"); p != "" {
		return p
	}
	p := filepath.Join(Root(), ".venv", "bin", "python")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no Python environment at %s: run ./scripts/test (or ./scripts/bootstrap) first", p)
	}
	return p
}

// EchoBridge is the framework-free bridge the core tests drive.
const EchoBridge = "mlbridge_worker.echo:EchoBridge"
