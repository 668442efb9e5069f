package adapters_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge/internal/testenv"
)

// `go fix ./...` rewrites the legacy calls it can (the //go:fix inline directives) in an
// application written against the legacy API; the application still compiles and passes its
// own tests, which run a real worker.
func TestGoFixMigratesTheLegacyApp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go fix and go test on a copy of testdata/legacyapp")
	}
	dir := testenv.LegacyApp(t)
	before, _ := os.ReadFile(filepath.Join(dir, "app.go"))
	testenv.Go(t, dir, "fix", "./...")
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
	testenv.Go(t, dir, "vet", "./...")
	testenv.Go(t, dir, "test", "-count=1", "./...")
	// A second run finds nothing more to do.
	testenv.Go(t, dir, "fix", "./...")
	again, _ := os.ReadFile(filepath.Join(dir, "app.go"))
	if !bytes.Equal(after, again) {
		t.Errorf("go fix is not idempotent:\n%s", again)
	}
}
