package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"
)

var bucket = []byte("definitions")

// Bolt is a Store persisted in one bbolt file (pure Go, embedded, crash-safe).
type Bolt struct {
	db *bolt.DB
}

// OpenBolt opens (creating if needed) the store file at path. Only one process may hold it.
func OpenBolt(path string) (*Bolt, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	return &Bolt{db: db}, nil
}

func (b *Bolt) Put(_ context.Context, d Definition) (Definition, error) {
	if d.ID == "" {
		return Definition{}, fmt.Errorf("store: definition without an ID")
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		d.Version = 1
		if old := bk.Get([]byte(d.ID)); old != nil {
			var prev Definition
			if err := msgpack.Unmarshal(old, &prev); err != nil {
				return fmt.Errorf("store: corrupt record %q: %w", d.ID, err)
			}
			d.Version = prev.Version + 1
		}
		d.UpdatedAt = time.Now().UTC()
		raw, err := msgpack.Marshal(&d)
		if err != nil {
			return err
		}
		return bk.Put([]byte(d.ID), raw)
	})
	return d, err
}

func (b *Bolt) Get(_ context.Context, id string) (Definition, error) {
	var d Definition
	err := b.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucket).Get([]byte(id))
		if raw == nil {
			return fmt.Errorf("%w: %q", ErrNotFound, id)
		}
		return msgpack.Unmarshal(raw, &d)
	})
	return d, err
}

func (b *Bolt) Delete(_ context.Context, id string) error {
	return b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		if bk.Get([]byte(id)) == nil {
			return fmt.Errorf("%w: %q", ErrNotFound, id)
		}
		return bk.Delete([]byte(id))
	})
}

func (b *Bolt) List(_ context.Context) ([]Definition, error) {
	var out []Definition
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			var d Definition
			if err := msgpack.Unmarshal(v, &d); err != nil {
				return errors.Join(fmt.Errorf("store: corrupt record %q", k), err)
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

func (b *Bolt) Close() error { return b.db.Close() }
