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
func cacheRoots() []root {
	var roots []root
	if d := os.Getenv(CacheDirEnv); d != "" {
		roots = append(roots, root{dir: filepath.Join(d, "runtime")})
	} else if d, err := os.UserCacheDir(); err == nil {
		roots = append(roots, root{dir: filepath.Join(d, "mlbridge", "runtime")})
	}
	// Per user: another user's directory in a shared /tmp is neither writable nor to be
	// trusted with code we run (privateDir checks it).
	tmp := filepath.Join(os.TempDir(), "mlbridge-"+strconv.Itoa(os.Getuid()))
	return append(roots, root{dir: filepath.Join(tmp, "runtime"), fallback: true})
}
