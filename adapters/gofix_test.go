package adapters_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge/internal/testenv"
)

// copyLegacyApp copies testdata/legacyapp to a temporary directory, pointing its replace
// directive at this repository.
func copyLegacyApp(t *testing.T) string {
	t.Helper()
	src := filepath.Join(testenv.Root(), "testdata", "legacyapp")
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "go.mod" {
			data = bytes.ReplaceAll(data, []byte("=> ../.."), []byte("=> "+testenv.Root()))
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	// Offline: everything the app needs is this repository and modules already in the cache.
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod", "MLBRIDGE_PYTHON="+testenv.Python(t))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// `go fix ./...` rewrites the legacy calls it can (the //go:fix inline directives) in an
// application written against the legacy API; the application still compiles and passes its
// own tests, which run a real worker.
func TestGoFixMigratesTheLegacyApp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go fix and go test on a copy of testdata/legacyapp")
	}
	dir := copyLegacyApp(t)
	before, _ := os.ReadFile(filepath.Join(dir, "app.go"))
	goCmd(t, dir, "fix", "./...")
	after, _ := os.ReadFile(filepath.Join(dir, "app.go"))
	for _, want := range []string{
		"a.pool.Client.ExecuteProgram(", "a.pool.Client.GetProgramInfo(", "pool.Client.ConfigureLM(",
		"dspy.WithModule(", "dspy.WithInstructions(", "a.pool.Client.Adapter().Health(ctx)",
	} {
		if !strings.Contains(string(after), want) {
			t.Errorf("after go fix, app.go lacks %q:\n%s", want, after)
		}
	}
	if bytes.Equal(before, after) {
		t.Fatal("go fix changed nothing")
	}
	goCmd(t, dir, "vet", "./...")
	goCmd(t, dir, "test", "-count=1", "./...")
	// A second run finds nothing more to do.
	goCmd(t, dir, "fix", "./...")
	again, _ := os.ReadFile(filepath.Join(dir, "app.go"))
	if !bytes.Equal(after, again) {
		t.Errorf("go fix is not idempotent:\n%s", again)
	}
}
