package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// LegacyApp copies testdata/legacyapp (an application written against the legacy API) to a
// temporary directory, its replace directive pointing at this repository, and returns it.
func LegacyApp(t testing.TB) string {
	t.Helper()
	src := filepath.Join(Root(), "testdata", "legacyapp")
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
			data = bytes.ReplaceAll(data, []byte("=> ../.."), []byte("=> "+Root()))
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// Go runs the go command in dir, offline (everything is this repository or already in the
// module cache), with the project's interpreter for tests that start workers.
func Go(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod", "MLBRIDGE_PYTHON="+Python(t))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
