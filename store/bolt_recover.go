package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"
)

// CheckReport is what Check found in a healthy store file.
type CheckReport struct {
	Path        string `json:"path"`
	Definitions int    `json:"definitions"`
	Bytes       int64  `json:"bytes"`
}

// Check verifies the store file at path as OpenBolt does, without changing it: a damaged file
// is a *CorruptError. The file is opened read-only; a process that holds it (a running host)
// makes Check fail after 2 s rather than wait.
func Check(ctx context.Context, path string) (CheckReport, error) {
	rep := CheckReport{Path: path}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return rep, fmt.Errorf("store: check %s: %w", path, err)
	}
	rep.Bytes = fi.Size()
	if err := notEmpty(path); err != nil {
		return rep, err
	}
	db, err := openDB(path, true)
	if err != nil {
		return rep, err
	}
	defer db.Close()
	rep.Definitions, err = verify(db, path)
	return rep, err
}

// Recovery methods, in the order Recover tries them.
const (
	// MethodIndex reads the records through bbolt's own index: exactly the live definitions
	// that were readable.
	MethodIndex = "index"
	// MethodPageScan reads every leaf page of the file on its own, for when the index itself
	// is damaged: see RecoverReport.Method.
	MethodPageScan = "page scan"
)

// RecoverReport says what Recover did.
type RecoverReport struct {
	Path string `json:"path"`
	// Healthy: the file passed the check and was left as it was; nothing else is set.
	Healthy bool `json:"healthy"`
	// Damage is the check's finding that made the recovery necessary.
	Damage string `json:"damage,omitempty"`
	// Backup is where the damaged file now is (path + ".damaged-<UTC time>").
	Backup string `json:"backup,omitempty"`
	// Method is MethodIndex or MethodPageScan. A page scan cannot tell live records from the
	// copies bbolt leaves in freed pages: it keeps the newest copy of each ID (by UpdatedAt),
	// so a definition deleted before the damage can come back, and one whose page was
	// destroyed can come back in an older version.
	Method string `json:"method,omitempty"`
	// Recovered lists the IDs written to the new file, with the version each came back as.
	Recovered []Recovered `json:"recovered"`
	// Lost lists the keys of records that were found but could not be decoded. Records on
	// pages too damaged to read leave no key to list.
	Lost []string `json:"lost"`
}

// Recovered is one definition written back by Recover.
type Recovered struct {
	ID      string `json:"id"`
	Version uint64 `json:"version"`
}

// Recover makes the store file at path usable again when Check finds it damaged: it copies
// every definition it can read (keeping Version and UpdatedAt) into a new file, renames the
// damaged file to path + ".damaged-<UTC time>" and puts the new file in its place. A file that
// passes the check is left as it is. No process may hold the file meanwhile (stop the host).
func Recover(ctx context.Context, path string) (RecoverReport, error) {
	rep := RecoverReport{Path: path}
	_, err := Check(ctx, path)
	if err == nil {
		rep.Healthy = true
		return rep, nil
	}
	if !errors.Is(err, ErrCorrupt) {
		return rep, err
	}
	var ce *CorruptError
	if errors.As(err, &ce) {
		rep.Damage = ce.Reason
		if ce.Err != nil {
			rep.Damage += ": " + ce.Err.Error()
		}
	}
	defs, lost, method, err := salvage(path)
	if err != nil {
		return rep, err
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	rep.Method, rep.Lost = method, lost
	for _, d := range defs {
		rep.Recovered = append(rep.Recovered, Recovered{ID: d.ID, Version: d.Version})
	}

	tmp := path + ".recovering"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return rep, err
	}
	if err := writeStore(tmp, defs); err != nil {
		os.Remove(tmp)
		return rep, fmt.Errorf("store: recover %s: writing %s: %w", path, tmp, err)
	}
	rep.Backup = path + ".damaged-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(path, rep.Backup); err != nil {
		return rep, fmt.Errorf("store: recover %s: keeping the damaged file: %w (the recovered store is %s)", path, err, tmp)
	}
	if err := os.Rename(tmp, path); err != nil {
		return rep, fmt.Errorf("store: recover %s: %w (the recovered store is %s, the damaged one %s)", path, err, tmp, rep.Backup)
	}
	syncDir(filepath.Dir(path))
	return rep, nil
}

// salvage reads what it can: through bbolt's index when the whole walk succeeds, else by
// scanning the file's pages.
func salvage(path string) (defs []Definition, lost []string, method string, err error) {
	defs, lost, err = salvageIndex(path)
	if err == nil {
		return defs, lost, MethodIndex, nil
	}
	if !errors.Is(err, ErrCorrupt) {
		return nil, nil, "", err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, "", fmt.Errorf("store: recover %s: %w", path, err)
	}
	defs, lost = scanPages(data)
	return defs, lost, MethodPageScan, nil
}

// salvageIndex walks the definitions bucket; records that do not decode are listed as lost. Any
// damage to the tree itself fails the whole walk (a *CorruptError).
func salvageIndex(path string) (defs []Definition, lost []string, err error) {
	if err := notEmpty(path); err != nil {
		return nil, nil, err
	}
	db, err := openDB(path, true)
	if err != nil {
		return nil, nil, err
	}
	defer db.Close()
	err = guard(path, "recover", func() error {
		return db.View(func(tx *bolt.Tx) error {
			bk := tx.Bucket(bucket)
			if bk == nil {
				return corrupt(path, "the definitions bucket is gone", nil)
			}
			return bk.ForEach(func(k, v []byte) error {
				var d Definition
				if msgpack.Unmarshal(v, &d) != nil || d.ID != string(k) {
					lost = append(lost, string(k))
					return nil
				}
				defs = append(defs, d)
				return nil
			})
		})
	})
	return defs, lost, err
}

// writeStore writes defs, as they are, into a new store file.
func writeStore(path string, defs []Definition) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucket(bucket)
		if err != nil {
			return err
		}
		for _, d := range defs {
			raw, err := msgpack.Marshal(&d)
			if err != nil {
				return err
			}
			if err := bk.Put([]byte(d.ID), raw); err != nil {
				return err
			}
		}
		return nil
	})
	return errors.Join(err, db.Close())
}

// newest orders two copies of one definition: the later write wins.
func newest(a, b Definition) bool {
	return cmp.Or(a.UpdatedAt.Compare(b.UpdatedAt), cmp.Compare(a.Version, b.Version)) > 0
}

func sortDefs(defs []Definition) {
	slices.SortFunc(defs, func(a, b Definition) int { return cmp.Compare(a.ID, b.ID) })
}

// syncDir makes the renames durable; a failure only weakens that, so it is not reported.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
