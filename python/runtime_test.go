package pyruntime

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// cleanTree lets t.TempDir remove a read-only copy.
func cleanTree(t *testing.T, dir string) { t.Cleanup(func() { removeTree(dir) }) }

// Every .py of the package on disk is embedded (a subpackage deeper than the globs reach
// would be missing from the runtime), and nothing else is.
func TestEmbedsEveryPythonFile(t *testing.T) {
	var onDisk, embedded []string
	err := fs.WalkDir(os.DirFS("."), Package, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "__pycache__" {
			return fs.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".py") {
			onDisk = append(onDisk, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = fs.WalkDir(Files(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			embedded = append(embedded, p)
		}
		return err
	})
	if !slices.Equal(onDisk, embedded) {
		t.Errorf("embedded %v\non disk %v", embedded, onDisk)
	}
	for _, want := range []string{Package + "/__init__.py", Package + "/frameworks/__init__.py"} {
		if !slices.Contains(embedded, want) {
			t.Errorf("%s not embedded", want)
		}
	}
	if v := Version(); len(v) != 16 || v != Version() {
		t.Errorf("version %q", v)
	}
}

// Many processes starting at once (goroutines here: the race is on the file system) all
// get the same complete, read-only copy, and leave no temporary directory behind.
func TestMaterializeConcurrently(t *testing.T) {
	root := filepath.Join(t.TempDir(), "runtime")
	cleanTree(t, root)
	const n = 16
	dirs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dirs[i], errs[i] = materialize(root, Version(), Files()) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || dirs[i] != filepath.Join(root, Version()) {
			t.Fatalf("start %d: %q %v", i, dirs[i], errs[i])
		}
	}
	checkCopy(t, dirs[0])
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Errorf("left in %s: %v", root, entries)
	}
}

// checkCopy compares dir with the embedded runtime: same bytes, sources read-only, bytecode
// cache writable, marker present.
func checkCopy(t *testing.T, dir string) {
	t.Helper()
	if !complete(dir, Version()) {
		t.Fatalf("%s has no marker for %s", dir, Version())
	}
	_ = fs.WalkDir(Files(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		st, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Error(err)
			return nil
		}
		if d.IsDir() {
			if st.Mode().Perm() != 0o555 {
				t.Errorf("%s: mode %s", p, st.Mode())
			}
			if pc, err := os.Stat(filepath.Join(dir, p, "__pycache__")); err != nil || pc.Mode().Perm() != 0o755 {
				t.Errorf("%s/__pycache__: %v %v", p, pc, err)
			}
			return nil
		}
		want, _ := fs.ReadFile(Files(), p)
		got, _ := os.ReadFile(filepath.Join(dir, p))
		if !bytes.Equal(got, want) || st.Mode().Perm() != 0o444 {
			t.Errorf("%s: mode %s, %d bytes, want 0444 and %d", p, st.Mode(), len(got), len(want))
		}
		return nil
	})
}

// A copy left incomplete by something else (no marker) is set aside and written again.
func TestMaterializeReplacesIncompleteCopy(t *testing.T) {
	root := t.TempDir()
	cleanTree(t, root)
	broken := filepath.Join(root, Version(), Package)
	if err := os.MkdirAll(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "__init__.py"), []byte("raise SystemExit('half')"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := materialize(root, Version(), Files())
	if err != nil {
		t.Fatal(err)
	}
	checkCopy(t, dir)
}

// An unwritable cache falls back to a private temporary directory, with a warning; a
// fallback directory others can write to is refused.
func TestMaterializeFallsBack(t *testing.T) {
	base := t.TempDir()
	cleanTree(t, base)
	notADir := filepath.Join(base, "file")
	if err := os.WriteFile(notADir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fallback := filepath.Join(base, "tmp", "runtime")
	if err := os.Mkdir(filepath.Dir(fallback), 0o700); err != nil {
		t.Fatal(err)
	}
	roots := []root{{dir: filepath.Join(notADir, "runtime")}, {dir: fallback, fallback: true}}
	dir, warning, err := materializeAny(roots, Version(), Files())
	if err != nil || dir != filepath.Join(fallback, Version()) || !strings.Contains(warning, CacheDirEnv) {
		t.Fatalf("dir %q, warning %q, err %v", dir, warning, err)
	}
	if err := os.Chmod(filepath.Dir(fallback), 0o777); err != nil {
		t.Fatal(err)
	}
	if _, _, err := materializeAny(roots, Version(), Files()); err == nil || !strings.Contains(err.Error(), "not a private directory") {
		t.Fatalf("shared fallback: %v", err)
	}
}

// Dir honours the override and writes the runtime again when a cleaner removed it under a
// running host.
func TestDirOverrideAndRewrite(t *testing.T) {
	cache := t.TempDir()
	cleanTree(t, cache)
	t.Setenv(CacheDirEnv, cache)
	mu.Lock()
	cached = ""
	mu.Unlock()
	t.Cleanup(func() { mu.Lock(); cached = ""; mu.Unlock() })
	dir, err := Dir()
	if err != nil || dir != filepath.Join(cache, "runtime", Version()) {
		t.Fatalf("%q %v", dir, err)
	}
	removeTree(dir)
	if again, err := Dir(); err != nil || again != dir {
		t.Fatalf("%q %v", again, err)
	}
	checkCopy(t, dir)
}

// The first start on a machine (or after a runtime change) writes the copy.
func BenchmarkMaterialize(b *testing.B) {
	for b.Loop() {
		root := b.TempDir()
		if _, err := materialize(root, Version(), Files()); err != nil {
			b.Fatal(err)
		}
		removeTree(root)
	}
}

// Every later worker start pays this: one marker read.
func BenchmarkDirCached(b *testing.B) {
	if _, err := Dir(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Dir(); err != nil {
			b.Fatal(err)
		}
	}
}
