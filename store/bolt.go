package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"
)

// Bolt is a Store persisted in one bbolt file (pure Go, embedded, crash-safe). Open it with
// OpenBolt. Damage found while reading — a record that is not a definition, a page bbolt
// cannot read — is a *CorruptError (errors.Is ErrCorrupt), never a panic.
type Bolt struct {
	db   *bolt.DB
	path string
}

// view and updateDeleted run fn in a transaction under guard: a damaged page is an error, not a panic.
func (b *Bolt) view(op string, fn func(*bolt.Bucket) error) error {
	return guard(b.path, op, func() error {
		return b.db.View(func(tx *bolt.Tx) error { return b.inBucket(tx, fn) })
	})
}

// deletedBucket holds the last version of each deleted id (8 bytes, big endian), so that a
// definition made again goes on from it: versions of an id never repeat, and an IfVersion
// read before a delete cannot match the definition made after it.
var deletedBucket = []byte("deleted")

// updateDeleted is update with the deleted versions' bucket too (made on first use).
func (b *Bolt) updateDeleted(op string, fn func(defs, deleted *bolt.Bucket) error) error {
	return guard(b.path, op, func() error {
		return b.db.Update(func(tx *bolt.Tx) error {
			del, err := tx.CreateBucketIfNotExists(deletedBucket)
			if err != nil {
				return err
			}
			return b.inBucket(tx, func(bk *bolt.Bucket) error { return fn(bk, del) })
		})
	})
}

func (b *Bolt) inBucket(tx *bolt.Tx, fn func(*bolt.Bucket) error) error {
	bk := tx.Bucket(bucket)
	if bk == nil {
		return corrupt(b.path, "the definitions bucket is gone", nil)
	}
	return fn(bk)
}

func (b *Bolt) Put(_ context.Context, d Definition) (Definition, error) {
	if d.ID == "" {
		return Definition{}, fmt.Errorf("store: definition without an ID")
	}
	if err := checkConditions(d); err != nil {
		return Definition{}, err
	}
	ifAbsent, ifVersion := d.IfAbsent, d.IfVersion
	d.IfAbsent, d.IfVersion = false, 0
	err := b.updateDeleted("put", func(bk, del *bolt.Bucket) error {
		d.Version = 1
		if v := del.Get([]byte(d.ID)); len(v) == 8 {
			d.Version = binary.BigEndian.Uint64(v) + 1
		}
		old := bk.Get([]byte(d.ID))
		if old == nil && ifVersion != 0 {
			return conflict(d.ID, ifVersion, 0, false)
		}
		if old != nil {
			if ifAbsent {
				return fmt.Errorf("%w: %q", ErrExists, d.ID)
			}
			var prev Definition
			if err := decodeRecord(b.path, []byte(d.ID), old, &prev); err != nil {
				return err
			}
			if ifVersion != 0 && prev.Version != ifVersion {
				return conflict(d.ID, ifVersion, prev.Version, true)
			}
			d.Version = prev.Version + 1
		}
		d.UpdatedAt = time.Now().UTC()
		raw, err := msgpack.Marshal(&d)
		if err != nil {
			return err
		}
		if err := del.Delete([]byte(d.ID)); err != nil {
			return err
		}
		return bk.Put([]byte(d.ID), raw)
	})
	return d, err
}

func (b *Bolt) Get(_ context.Context, id string) (Definition, error) {
	var d Definition
	err := b.view("get", func(bk *bolt.Bucket) error {
		raw := bk.Get([]byte(id))
		if raw == nil {
			return fmt.Errorf("%w: %q", ErrNotFound, id)
		}
		return decodeRecord(b.path, []byte(id), raw, &d)
	})
	return d, err
}

func (b *Bolt) Delete(_ context.Context, id string) error {
	return b.updateDeleted("delete", func(bk, del *bolt.Bucket) error {
		raw := bk.Get([]byte(id))
		if raw == nil {
			return fmt.Errorf("%w: %q", ErrNotFound, id)
		}
		var d Definition
		if err := decodeRecord(b.path, []byte(id), raw, &d); err != nil {
			return err
		}
		if err := del.Put([]byte(id), binary.BigEndian.AppendUint64(nil, d.Version)); err != nil {
			return err
		}
		return bk.Delete([]byte(id))
	})
}

func (b *Bolt) List(_ context.Context) ([]Definition, error) {
	var out []Definition
	err := b.view("list", func(bk *bolt.Bucket) error {
		return bk.ForEach(func(k, v []byte) error {
			var d Definition
			if err := decodeRecord(b.path, k, v, &d); err != nil {
				return err
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

func (b *Bolt) Close() error { return b.db.Close() }
