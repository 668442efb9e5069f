package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var bucket = []byte("definitions")

// OpenBolt opens the store file at path, creating it if no file exists. Only one process may
// hold it.
//
// An existing file is verified before it is used: every record is read and decoded and bbolt's
// consistency check (tx.Check) runs, so damage is found at start-up, as a *CorruptError
// (errors.Is ErrCorrupt) naming the file and the problem, and never as a panic later. That costs
// about one read of the file (docs/STORE.md has figures). An empty (0-byte) file is an error too:
// opening it as a new store would hide the loss of every definition.
func OpenBolt(path string) (*Bolt, error) {
	if err := notEmpty(path); err != nil {
		return nil, err
	}
	db, err := openDB(path, false)
	if err != nil {
		return nil, err
	}
	if _, err := verify(db, path); err != nil {
		db.Close()
		return nil, err
	}
	if hasBucket(db) {
		return &Bolt{db: db, path: path}, nil
	}
	if err := guard(path, "create bucket", func() error {
		return db.Update(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists(bucket)
			return err
		})
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return &Bolt{db: db, path: path}, nil
}

// notEmpty refuses an existing 0-byte file and a file shorter than its header says (bbolt
// would read the missing pages as zeros or fault); a missing file is fine (a new store).
func notEmpty(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("store: open %s: %w", path, err)
	case fi.Size() == 0:
		return corrupt(path, "the file is empty (0 bytes): not a store, and whatever definitions it held are gone; "+
			"remove it to start an empty store, or restore it from a backup", nil)
	}
	if want, ok := headerSize(path); ok && want > fi.Size() {
		return corrupt(path, fmt.Sprintf("truncated: the file is %d bytes, its header says %d", fi.Size(), want), nil)
	}
	return nil
}

// openDB opens the bbolt file, turning bbolt's panics and its errors about damaged header
// pages into a *CorruptError.
func openDB(path string, readOnly bool) (*bolt.DB, error) {
	var file *os.File
	opts := &bolt.Options{
		Timeout:  2 * time.Second,
		ReadOnly: readOnly,
		// Read the freelist now, under guard, rather than later in the goroutine of tx.Check,
		// where a fault could not be recovered.
		PreLoadFreelist: true,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			if file == nil {
				file = f
			}
			return f, err
		},
	}
	var db *bolt.DB
	err := guard(path, "open", func() error {
		var err error
		db, err = bolt.Open(path, 0o600, opts)
		return err
	})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, ErrCorrupt):
		// bbolt panicked inside Open: its file stays open and locked unless closed here (the
		// mapping of a failed Open cannot be reached and stays until the process exits).
		if file != nil {
			file.Close()
		}
		return nil, err
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, corrupt(path, "not a bbolt file, or both of its header pages are damaged", err)
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("store: open %s: another process holds the file (%w)", path, err)
	}
	return nil, fmt.Errorf("store: open %s: %w", path, err)
}

// hasBucket is called after verify: the read cannot fail. It spares a write transaction (a
// commit and its fsync) on every open of an existing store.
func hasBucket(db *bolt.DB) (ok bool) {
	_ = db.View(func(tx *bolt.Tx) error {
		ok = tx.Bucket(bucket) != nil
		return nil
	})
	return ok
}

// maxCheckErrors bounds how many of tx.Check's findings an error quotes.
const maxCheckErrors = 3

// verify reads every record once and runs bbolt's consistency check; it returns the number of
// definitions.
func verify(db *bolt.DB, path string) (n int, err error) {
	err = guard(path, "verify", func() error {
		return db.View(func(tx *bolt.Tx) error {
			if bk := tx.Bucket(bucket); bk != nil {
				if err := bk.ForEach(func(k, v []byte) error {
					if err := decodeRecord(path, k, v, new(Definition)); err != nil {
						return err
					}
					n++
					return nil
				}); err != nil {
					return err
				}
			}
			return check(tx, path)
		})
	})
	return n, err
}

// check runs bbolt's consistency check (freelist, page reachability, key order). The channel is
// always drained: tx.Check's goroutine holds the transaction until it is.
func check(tx *bolt.Tx, path string) error {
	var found []string
	count := 0
	for err := range tx.Check() {
		if count++; count <= maxCheckErrors {
			found = append(found, err.Error())
		}
	}
	if count == 0 {
		return nil
	}
	reason := "consistency check: " + strings.Join(found, "; ")
	if count > maxCheckErrors {
		reason += fmt.Sprintf(" (and %d more)", count-maxCheckErrors)
	}
	return corrupt(path, reason, nil)
}

// decodeRecord decodes one record, or says which one is not a definition.
func decodeRecord(path string, k, v []byte, d *Definition) error {
	if err := msgpack.Unmarshal(v, d); err != nil {
		return corrupt(path, fmt.Sprintf("record %q is not a msgpack definition", k), err)
	}
	return nil
}
