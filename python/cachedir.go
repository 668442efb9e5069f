package pyruntime

import (
	"os"
	"path/filepath"
	"strconv"
)

// CacheDirEnv overrides where the runtime is written (tests, CI, read-only homes): the
// runtime goes to $MLBRIDGE_CACHE_DIR/runtime/<version>.
const CacheDirEnv = "MLBRIDGE_CACHE_DIR"

// root is one place the runtime may be written; fallback ones are used with a warning.
type root struct {
	dir      string
	fallback bool
}

// cacheRoots lists where to write the runtime, best first: the override or the user's cache
// directory, then the temporary directory (a home without a writable cache still works).
//
// Every root is absolute: it goes on the worker's PYTHONPATH, which Python would resolve
// against the worker's own directory (Config.Dir), not the host's.
func cacheRoots() []root {
	var roots []root
	add := func(dir string, fallback bool) {
		if abs, err := filepath.Abs(dir); err == nil {
			roots = append(roots, root{dir: abs, fallback: fallback})
		}
	}
	if d := os.Getenv(CacheDirEnv); d != "" {
		add(filepath.Join(d, "runtime"), false)
	} else if d, err := os.UserCacheDir(); err == nil {
		add(filepath.Join(d, "mlbridge", "runtime"), false)
	}
	// Per user: another user's directory in a shared /tmp is neither writable nor to be
	// trusted with code we run (privateDir checks mode and owner).
	add(filepath.Join(os.TempDir(), "mlbridge-"+strconv.Itoa(os.Getuid()), "runtime"), true)
	return roots
}
