package store

import (
	"testing"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkOpenBolt10k prices the check OpenBolt runs on an existing file of 10,000
// definitions (~250 bytes each): "verified" is OpenBolt, "unverified" what it did before (open,
// then a write transaction creating the bucket if needed).
func BenchmarkOpenBolt10k(b *testing.B) {
	path := newStoreFile(b, 10_000)
	b.Run("verified", func(b *testing.B) {
		for b.Loop() {
			s, err := OpenBolt(path)
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
	b.Run("unverified", func(b *testing.B) {
		for b.Loop() {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error {
				_, err := tx.CreateBucketIfNotExists(bucket)
				return err
			}); err != nil {
				b.Fatal(err)
			}
			db.Close()
		}
	})
}
