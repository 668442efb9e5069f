//go:build unix

package worker

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge/internal/testenv"
	pyruntime "github.com/mlbridge/mlbridge/python"
)

// With nowhere to write the embedded runtime (a read-only filesystem, no home, no private
// temporary directory), a worker still starts on the mlbridge_worker its interpreter has
// installed (the repository's venv has it, as a wheel install would), with one warning.
func TestWorkerStartsWhenTheRuntimeCannotBeWritten(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(pyruntime.CacheDirEnv, filepath.Join(notADir, "cache")) // under a file: cannot be made
	t.Setenv("TMPDIR", filepath.Join(notADir, "tmp"))
	if _, err := pyruntime.Dir(); err == nil {
		t.Skip("the runtime could still be written somewhere")
	}
	rec := &records{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := Start(ctx, Config{Python: testenv.Python(t), Bridge: testenv.EchoBridge, Logger: slog.New(rec)})
	if err != nil {
		t.Fatalf("start without a writable runtime: %v", err)
	}
	t.Cleanup(func() { w.Kill("test over"); <-w.Done() })
	if v := callEcho[int](t, w, "add", map[string]any{"a": 2, "b": 3}); v != 5 {
		t.Fatal(v)
	}
	if _, ok := rec.find("mlbridge: the Python worker runtime cannot be written"); !ok {
		t.Fatalf("no warning that the runtime could not be written: %q", rec.messages())
	}
}
