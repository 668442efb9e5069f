// Package pyruntime ships the Python worker runtime (the mlbridge_worker package) inside
// the Go module, so a program that imports mlbridge needs no matching Python package: Dir
// writes the embedded copy once per content version into the user's cache, and the worker
// layer puts that directory first on every worker's PYTHONPATH. Host and runtime can then
// never be of different versions; the interpreter needs only msgpack (and uses uvloop when
// present).
package pyruntime

import (
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"sync"
)

// files is the runtime: every .py of the package and of its subpackages (frameworks/).
// Explicit globs, not the directory: a directory pattern would skip __init__.py (names
// starting with "_"), and these never pick up __pycache__.
//
//go:embed mlbridge_worker/*.py mlbridge_worker/*/*.py
var files embed.FS

// Package is the top-level Python package the runtime directory holds.
const Package = "mlbridge_worker"

// Files returns the embedded runtime, rooted above mlbridge_worker/.
func Files() fs.FS { return files }

// Version identifies the embedded content: a hash of every file's path and bytes, computed
// once. It names the cache directory, so a changed runtime never reuses an old copy.
var Version = sync.OnceValue(func() string {
	h := sha256.New()
	_ = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		// Path and length before the bytes: no two different trees hash the same input.
		h.Write(binary.BigEndian.AppendUint64([]byte(p+"\x00"), uint64(len(b))))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:16]
})

var (
	mu     sync.Mutex
	cached string
)

// Dir returns a directory holding mlbridge_worker/ at Version: put it first on PYTHONPATH.
// The first call in a process materializes it if needed (a few ms); later calls cost one
// small file read, which also notices a cache cleaned under a running host and writes the
// runtime again.
func Dir() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if cached != "" && complete(cached, Version()) {
		return cached, nil
	}
	dir, warning, err := materializeAny(cacheRoots(), Version(), files)
	if err != nil {
		return "", err
	}
	if warning != "" {
		slog.Warn("mlbridge: "+warning, "dir", dir)
	}
	cached = dir
	return dir, nil
}
