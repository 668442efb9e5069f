package mlbridge_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge/internal/testenv"
)

// TestAdoptionOutsideTheRepository is the adoption issue's "how to show it": a module of
// its own that requires mlbridge (replaced by this tree, as `go get` would fetch it), a venv
// holding nothing but msgpack, a bridge module of its own, and `go run` with no
// MLBRIDGE_PYTHON and an empty runtime cache. Open, OpenPool and a Registry from its
// mlbridge.yaml must each serve a sync handler, an async one and a generator, with the
// runtime from the cache — never from an installed package.
func TestAdoptionOutsideTheRepository(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module and a venv, then go runs it (~1 min)")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	app := t.TempDir()
	copyTree(t, filepath.Join(testenv.Root(), "testdata", "adopter"), app)
	goMod := "module example.com/adopter\n\ngo 1.26.0\n\nrequire github.com/mlbridge/mlbridge v0.0.0\n\n" +
		"replace github.com/mlbridge/mlbridge => " + testenv.Root() + "\n"
	writeFile(t, filepath.Join(app, "go.mod"), goMod)
	// The dependencies' sums, so resolving them needs no network (the module cache has them).
	sum, err := os.ReadFile(filepath.Join(testenv.Root(), "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(app, "go.sum"), string(sum))
	msgpackOnlyVenv(t, filepath.Join(app, ".venv")) // found by discovery: ./.venv/bin/python

	cache := t.TempDir()
	t.Cleanup(func() { makeWritable(cache) })
	cmd := exec.Command(goTool, "run", ".")
	cmd.Dir = app
	cmd.Env = append(withoutEnv(os.Environ(), "MLBRIDGE_PYTHON", "MLBRIDGE_CACHE_DIR", "PYTHONPATH", "VIRTUAL_ENV", "GOFLAGS", "GOWORK"),
		"GOFLAGS=-mod=mod", "GOWORK=off", "MLBRIDGE_CACHE_DIR="+cache)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("go run:\n%s", stdout.String())
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	runtimes, _ := filepath.Glob(filepath.Join(cache, "runtime", "*", "mlbridge_worker", "__init__.py"))
	if len(runtimes) != 1 {
		t.Fatalf("runtime copies in the cache: %v", runtimes)
	}
	for i, name := range []string{"open", "pool", "registry"} {
		want := name + ": add=42 shout=HELLO count=0,1,2 runtime=" + runtimes[0] + " numpy=false"
		if i >= len(lines) || lines[i] != want {
			t.Errorf("line %d: want %q\nstdout:\n%s\nstderr:\n%s", i, want, stdout.String(), stderr.String())
		}
	}
}

// msgpackOnlyVenv makes a venv from the repository interpreter's base Python and installs
// msgpack alone: with the repository's uv when bootstrap installed it (from uv's cache,
// else the registry), else with pip.
func msgpackOnlyVenv(t *testing.T, dir string) {
	t.Helper()
	python := filepath.Join(dir, "bin", "python")
	uv := filepath.Join(testenv.Root(), ".tools", "uv", "bin", "uv")
	if _, err := os.Stat(uv); err == nil {
		runOK(t, testenv.Python(t), "-m", "venv", "--without-pip", dir)
		if _, err := exec.Command(uv, "pip", "install", "--quiet", "--offline", "--python", python, "msgpack").CombinedOutput(); err != nil {
			runOK(t, uv, "pip", "install", "--quiet", "--python", python, "msgpack")
		}
	} else {
		runOK(t, testenv.Python(t), "-m", "venv", dir)
		runOK(t, python, "-m", "pip", "install", "--quiet", "msgpack")
	}
	out := runOK(t, python, "-c", "import importlib.util as u; print([m for m in ('mlbridge_worker', 'numpy') if u.find_spec(m)])")
	if strings.TrimSpace(out) != "[]" {
		t.Fatalf("the venv must hold msgpack only, it has %s", out)
	}
}

func runOK(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, k) {
			out = append(out, kv)
		}
	}
	return out
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			if d.Name() == "__pycache__" {
				return fs.SkipDir
			}
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// makeWritable lets the test's cleanup remove the read-only runtime copy.
func makeWritable(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
}
