package pyruntime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// marker is written last into a copy of the runtime and holds its version: a directory
// with the right marker is complete, checked by reading one small file.
const marker = ".mlbridge-runtime"

// complete reports whether dir holds a finished copy of version.
func complete(dir, version string) bool {
	b, err := os.ReadFile(filepath.Join(dir, marker))
	return err == nil && string(b) == version
}

// materializeAny writes the runtime under the first root that takes it. warning is set
// when it had to use a fallback root.
func materializeAny(roots []root, version string, fsys fs.FS) (dir, warning string, err error) {
	var failed []error
	for _, r := range roots {
		if r.fallback {
			if err := privateDir(filepath.Dir(r.dir)); err != nil {
				failed = append(failed, err)
				continue
			}
		}
		dir, err := materialize(r.dir, version, fsys)
		if err != nil {
			failed = append(failed, err)
			continue
		}
		if r.fallback {
			warning = fmt.Sprintf("no writable cache directory for the Python worker runtime, using the temporary directory "+
				"(set %s to keep it elsewhere)", CacheDirEnv)
			if len(failed) > 0 {
				warning += ": " + errors.Join(failed...).Error()
			}
		}
		return dir, warning, nil
	}
	return "", "", fmt.Errorf("mlbridge: cannot write the Python worker runtime (set %s to a writable directory): %w",
		CacheDirEnv, errors.Join(failed...))
}

// materialize makes rootDir/version a complete, read-only copy of fsys and returns it.
// Many processes may run it at once: each writes its own temporary directory beside the
// target and renames it into place; a rename that finds the target already there lost the
// race, and the winner's copy (the same bytes) is used.
func materialize(rootDir, version string, fsys fs.FS) (string, error) {
	final := filepath.Join(rootDir, version)
	if complete(final, version) {
		return final, nil
	}
	if err := os.MkdirAll(rootDir, 0o755); err != nil {
		return "", err
	}
	removeLeftovers(rootDir)
	tmp, err := os.MkdirTemp(rootDir, ".tmp-"+version+"-")
	if err != nil {
		return "", err
	}
	defer removeTree(tmp) // nothing left to remove once renamed
	if err := writeTree(tmp, version, fsys); err != nil {
		return "", fmt.Errorf("writing the Python worker runtime into %s: %w", tmp, err)
	}
	for attempt := 0; ; attempt++ {
		err := os.Rename(tmp, final)
		if err == nil {
			_ = os.Chmod(final, 0o555)
			return final, nil
		}
		if complete(final, version) {
			return final, nil // another process won
		}
		if attempt > 0 {
			return "", err
		}
		// An incomplete copy not written by this code (a cache cleaner that stopped
		// halfway, a copy tool): set it aside, then rename again.
		if err := os.Rename(final, filepath.Join(rootDir, fmt.Sprintf(".stale-%s-%d", version, time.Now().UnixNano()))); err != nil &&
			!errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
}

// writeTree copies fsys into dir, then the marker, then makes the sources read-only.
func writeTree(dir, version string, fsys fs.FS) error {
	var dirs []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			dirs = append(dirs, target)
			if err := os.Mkdir(target, 0o755); err != nil {
				return err
			}
			// Python's bytecode cache stays writable so workers do not compile every module
			// at every start: a non-root user cannot create it in a read-only directory.
			return os.Mkdir(filepath.Join(target, "__pycache__"), 0o755)
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o444)
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, marker), []byte(version), 0o444); err != nil {
		return err
	}
	// Read-only, so nobody edits the cached copy believing it is the source.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chmod(dirs[i], 0o555); err != nil {
			return err
		}
	}
	return nil
}

// removeLeftovers removes temporary and set-aside copies older than an hour (a process
// killed while writing; a stale copy no worker can still be importing).
func removeLeftovers(rootDir string) {
	entries, err := os.ReadDir(rootDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".tmp-") && !strings.HasPrefix(e.Name(), ".stale-") {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
			removeTree(filepath.Join(rootDir, e.Name()))
		}
	}
}

// removeTree removes a copy made read-only (RemoveAll cannot empty a 0555 directory).
func removeTree(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	_ = os.RemoveAll(dir)
}

// privateDir makes sure dir exists, is a real directory and is open to its owner only: the
// fallback lives in the shared temporary directory, where another user could otherwise
// plant code for our workers to import.
func privateDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() || st.Mode().Perm()&0o077 != 0 || !ownedByMe(st) {
		return fmt.Errorf("%s is not a private directory of this user (mode %s): not used for the Python worker runtime", dir, st.Mode())
	}
	return nil
}
