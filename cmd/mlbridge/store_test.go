package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/mlbridge/mlbridge/store"
)

func TestStoreCheckAndRecover(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "defs.db")
	s, err := store.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if _, err := s.Put(ctx, store.Definition{ID: id, Kind: "program", Spec: map[string]any{"n": 1}}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if out, err := run(t, "store", "check", "--path", path); err != nil || !strings.Contains(out, "ok, 3 definitions") {
		t.Fatalf("check a good file: %v\n%s", err, out)
	}

	// A record that is not msgpack, written behind the store's back.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("definitions")).Put([]byte("broken"), []byte{0xc1}) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := run(t, "store", "check", "--path", path); !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), `"broken"`) {
		t.Fatalf("check a damaged file: %v", err)
	}
	out, err := run(t, "store", "recover", "--path", path)
	if err != nil || !strings.Contains(out, "recovered 3 definitions (read by index)") || !strings.Contains(out, "lost (unreadable records): broken") {
		t.Fatalf("recover: %v\n%s", err, out)
	}
	backup := regexp.MustCompile(`kept as (\S+)`).FindStringSubmatch(out)
	if backup == nil {
		t.Fatalf("no backup named:\n%s", out)
	}
	if _, err := os.Stat(backup[1]); err != nil {
		t.Fatalf("backup: %v", err)
	}
	if out, err := run(t, "store", "check", "--path", path); err != nil || !strings.Contains(out, "ok, 3 definitions") {
		t.Fatalf("check after recover: %v\n%s", err, out)
	}
	if out, err := run(t, "store", "recover", "--path", path); err != nil || !strings.Contains(out, "nothing to recover") {
		t.Fatalf("recover a good file: %v\n%s", err, out)
	}
	if _, err := run(t, "store", "check"); err == nil || !strings.Contains(err.Error(), "path") {
		t.Fatalf("check without --path: %v", err)
	}
}
