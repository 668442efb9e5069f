// Package testenv finds what the real Go↔Python tests need: the repository root and the
// project's Python interpreter (the .venv that ./scripts/bootstrap installs).
package testenv

import (
	"bufio"
	"os"
	"os/exec"
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

// HelperHost starts this test binary again as a host of its own, running only the test named
// run with env added (and this test's Python), and returns it with the first line it printed
// (its report). The helper is killed when t ends, whatever happened.
func HelperHost(t testing.TB, run string, env ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+run+"$")
	cmd.Env = append(append(os.Environ(), env...), "MLBRIDGE_PYTHON="+Python(t))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("helper host: %v", err)
	}
	return cmd, line
}
