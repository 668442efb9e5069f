package pyruntime

import (
	"os"
	"path/filepath"
	"testing"
)

// A relative MLBRIDGE_CACHE_DIR becomes absolute: it goes on the worker's PYTHONPATH, and a
// worker running in another directory (Config.Dir) would resolve it there.
func TestCacheRootsAreAbsolute(t *testing.T) {
	t.Setenv(CacheDirEnv, "relative-cache")
	for _, r := range cacheRoots() {
		if !filepath.IsAbs(r.dir) {
			t.Fatalf("cache root %q is relative", r.dir)
		}
	}
	wd, _ := os.Getwd()
	if got, want := cacheRoots()[0].dir, filepath.Join(wd, "relative-cache", "runtime"); got != want {
		t.Fatalf("first root %q, want %q", got, want)
	}
}

// The shared-/tmp fallback is refused when another user owns it, even with mode 0700: its
// owner could change its mode or contents between our check and our workers' imports.
func TestPrivateDirRefusesAnotherUsersDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making a directory owned by another user needs root")
	}
	dir := filepath.Join(t.TempDir(), "planted")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := privateDir(dir); err != nil {
		t.Fatalf("our own private directory refused: %v", err)
	}
	if err := os.Chown(dir, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	if err := privateDir(dir); err == nil {
		t.Fatal("a directory owned by uid 4242 was accepted")
	}
}
