package testenv

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// LegacyApp copies testdata/legacyapp (an application written against the legacy API) to a
// temporary directory, its replace directive pointing at this repository, and returns it.
func LegacyApp(t testing.TB) string { return Module(t, "legacyapp") }

// LegacyCorpus copies testdata/legacycorpus (a legacy codebase of several packages that uses
// the legacy API every way the migration must handle) like LegacyApp.
func LegacyCorpus(t testing.TB) string { return Module(t, "legacycorpus") }

// Module copies the module testdata/name, with its subdirectories, to a temporary directory,
// its go.mod's replace directive (=> ../..) pointing at this repository, and returns it.
func Module(t testing.TB, name string) string {
	t.Helper()
	src := filepath.Join(Root(), "testdata", name)
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if rel == "go.mod" {
			data = bytes.ReplaceAll(data, []byte("=> ../.."), []byte("=> "+Root()))
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
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
