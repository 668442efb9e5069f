package pyenv

import (
	"os"
	"path/filepath"
	"testing"
)

// FindUV runs .tools/uv only from the mlbridge repository's root: a .tools/uv planted in a
// shared parent directory (say /tmp) of the working directory is never picked.
func TestFindUVOnlyInTheRepository(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no uv on PATH
	plant := func(dir string) string {
		p := filepath.Join(dir, ".tools", "uv", "bin", "uv")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	shared := t.TempDir()
	plant(shared)
	work := filepath.Join(shared, "someone", "project")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(work)
	if got := FindUV(""); got != "" {
		t.Fatalf("picked %s from a parent directory outside any mlbridge checkout", got)
	}

	repo := filepath.Join(shared, "mlbridge")
	if err := os.MkdirAll(filepath.Join(repo, "cmd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "go.mod"), []byte("module github.com/mlbridge/mlbridge\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := plant(repo)
	t.Chdir(filepath.Join(repo, "cmd"))
	got := FindUV("")
	if real, _ := filepath.EvalSymlinks(got); got == "" || (got != want && real != want) {
		t.Fatalf("FindUV in the repository = %q, want %q", got, want)
	}
}
