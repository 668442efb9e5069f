package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// newStoreFile writes n definitions (in one transaction, so the file holds no stale copies)
// and returns the closed file's path.
func newStoreFile(t testing.TB, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "defs.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defs := make([]Definition, n)
	for i := range defs {
		defs[i] = Definition{ID: defID(i), Kind: "program", Version: 1,
			Spec:  map[string]any{"signature": "question -> answer", "n": i, "doc": strings.Repeat("x", 100)},
			State: []byte{byte(i), 1, 2, 3}}
	}
	db.Close()
	if err := writeStore(path+".new", defs); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	return path
}

func defID(i int) string { return fmt.Sprintf("prog-%05d", i) }

// wantCorrupt checks that err is a *CorruptError about path whose reason mentions what.
func wantCorrupt(t *testing.T, err error, path, what string) *CorruptError {
	t.Helper()
	var ce *CorruptError
	if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.Path != path {
		t.Fatalf("want a *CorruptError for %s, got %v", path, err)
	}
	if !strings.Contains(err.Error(), what) || !strings.Contains(err.Error(), path) {
		t.Fatalf("error does not say %q: %v", what, err)
	}
	return ce
}

// dataLeaf finds a leaf page of the definitions bucket past the first quarter of the file and
// returns its offset, its size and the keys it holds.
func dataLeaf(t *testing.T, data []byte) (off, size int, keys []string) {
	t.Helper()
	ps := pageSize(data)
	for off := len(data) / 4 / ps * ps; off+ps <= len(data); off += ps {
		if le.Uint16(data[off+8:]) != leafPageFlag {
			continue
		}
		var keys []string
		scanLeaf(data[off:off+ps], false, func(k, _ []byte) { keys = append(keys, string(k)) })
		if len(keys) > 0 && strings.HasPrefix(keys[0], "prog-") {
			return off, ps, keys
		}
	}
	t.Fatal("no data leaf page in the file")
	return 0, 0, nil
}

// damagePage writes random bytes over one leaf page of definitions and returns its keys.
func damagePage(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off, size, keys := dataLeaf(t, data)
	r := rand.New(rand.NewPCG(1, 2))
	for i := off; i < off+size; i++ {
		data[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestOpenBoltDamagedPage(t *testing.T) {
	path := newStoreFile(t, 500)
	if keys := damagePage(t, path); len(keys) == 0 {
		t.Fatal("damaged a page without records")
	}
	_, err := OpenBolt(path)
	wantCorrupt(t, err, path, "damaged")
	// A failed open leaves the file unlocked: the next open answers at once, the same way.
	_, err = OpenBolt(path)
	wantCorrupt(t, err, path, "damaged")
}

func TestOpenBoltTruncated(t *testing.T) {
	path := newStoreFile(t, 500)
	before, _ := os.ReadFile(path)
	if err := os.Truncate(path, int64(len(before)/2)); err != nil {
		t.Fatal(err)
	}
	_, err := OpenBolt(path)
	wantCorrupt(t, err, path, "truncated")
	rep, err := Recover(context.Background(), path)
	if err != nil || rep.Method != MethodPageScan || len(rep.Recovered) == 0 || len(rep.Recovered) >= 500 {
		t.Fatalf("recover a half file: %d recovered, %+v", len(rep.Recovered), err)
	}

	// Cut inside the first page, after its header: still readable, still truncated.
	if err := os.WriteFile(path, before[:100], 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = OpenBolt(path)
	wantCorrupt(t, err, path, "truncated: the file is 100 bytes")
	// Cut before the end of the first header: bbolt itself refuses it.
	if err := os.WriteFile(path, before[:50], 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = OpenBolt(path)
	wantCorrupt(t, err, path, "not a bbolt file")
}

func TestOpenBoltGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "defs.db")
	data := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenBolt(path)
	wantCorrupt(t, err, path, "not a bbolt file")
}

func TestOpenBoltEmptyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "defs.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenBolt(path)
	wantCorrupt(t, err, path, "empty (0 bytes)")
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Fatalf("the empty file was changed: %v %v", fi, err)
	}
	// A missing file is still a new, empty store.
	s, err := OpenBolt(filepath.Join(dir, "new.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if all, err := s.List(context.Background()); err != nil || len(all) != 0 {
		t.Fatalf("new store: %v %v", all, err)
	}
}

// putRaw stores bytes that are not a msgpack definition under key.
func putRaw(t *testing.T, db *bolt.DB, key string, raw []byte) {
	t.Helper()
	if err := db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		return bk.Put([]byte(key), raw)
	}); err != nil {
		t.Fatal(err)
	}
}

func TestOpenBoltRecordNotMsgpack(t *testing.T) {
	path := newStoreFile(t, 10)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	putRaw(t, db, "broken", []byte{0xc1, 0xff}) // 0xc1 is never valid msgpack
	db.Close()
	_, err = OpenBolt(path)
	if ce := wantCorrupt(t, err, path, `record "broken" is not a msgpack definition`); ce.Err == nil {
		t.Fatal("the msgpack error is not kept")
	}
}

// Damage that appears while the store is open (another writer, a disk) is an error from Get,
// List, Put and Delete, never a panic.
func TestBoltReadsNeverPanic(t *testing.T) {
	ctx := context.Background()
	t.Run("record not msgpack", func(t *testing.T) {
		s, err := OpenBolt(newStoreFile(t, 10))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		putRaw(t, s.db, defID(3), []byte{0xc1})
		if _, err := s.Get(ctx, defID(3)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("get: %v", err)
		}
		if _, err := s.List(ctx); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("list: %v", err)
		}
		if _, err := s.Put(ctx, Definition{ID: defID(3)}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("put over it: %v", err)
		}
		if d, err := s.Get(ctx, defID(4)); err != nil || d.ID != defID(4) {
			t.Fatalf("a good record: %+v %v", d, err)
		}
	})
	t.Run("page overwritten", func(t *testing.T) {
		path := newStoreFile(t, 500)
		s, err := OpenBolt(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		keys := damagePage(t, path) // the file is mapped: the store sees the new bytes
		if _, err := s.List(ctx); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("list: %v", err)
		}
		if _, err := s.Get(ctx, keys[len(keys)/2]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("get: %v", err)
		}
	})
	t.Run("file truncated", func(t *testing.T) {
		path := newStoreFile(t, 500)
		s, err := OpenBolt(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		// Reading a mapped page past the end of the file is a SIGBUS: a fault, made a panic.
		if err := os.Truncate(path, 4*int64(os.Getpagesize())); err != nil {
			t.Fatal(err)
		}
		_, err = s.List(ctx)
		wantCorrupt(t, err, path, "bbolt failed reading the file")
		if _, err := s.Get(ctx, defID(499)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("get: %v", err)
		}
	})
}

func ids(defs []Recovered) []string {
	var out []string
	for _, d := range defs {
		out = append(out, d.ID)
	}
	return out
}

func TestRecoverDamagedPage(t *testing.T) {
	ctx := context.Background()
	path := newStoreFile(t, 500)
	damaged := damagePage(t, path)
	before, _ := os.ReadFile(path)
	if _, err := Check(ctx, path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("check: %v", err)
	}
	rep, err := Recover(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 500 {
		if !slices.Contains(damaged, defID(i)) {
			want = append(want, defID(i))
		}
	}
	if got := ids(rep.Recovered); !slices.Equal(got, want) {
		t.Fatalf("recovered %d definitions, want the %d not on the damaged page (%d): %v", len(got), len(want), len(damaged), rep)
	}
	if rep.Method != MethodPageScan || rep.Damage == "" {
		t.Fatalf("report: %+v", rep)
	}
	if backup, err := os.ReadFile(rep.Backup); err != nil || string(backup) != string(before) {
		t.Fatalf("backup %s is not the damaged file: %v", rep.Backup, err)
	}
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatalf("the recovered store does not open: %v", err)
	}
	defer s.Close()
	d, err := s.Get(ctx, want[0])
	if err != nil || d.Version != 1 || d.Spec["signature"] != "question -> answer" || len(d.State) != 4 || d.UpdatedAt != (Definition{}).UpdatedAt {
		t.Fatalf("recovered definition: %+v %v", d, err)
	}
	if _, err := s.Get(ctx, damaged[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a definition from the damaged page: %v", err)
	}
}

func TestRecoverBadRecordUsesTheIndex(t *testing.T) {
	ctx := context.Background()
	path := newStoreFile(t, 20)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	putRaw(t, db, "broken", []byte("not msgpack at all\xc1"))
	db.Close()
	rep, err := Recover(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Method != MethodIndex || len(rep.Recovered) != 20 || !slices.Equal(rep.Lost, []string{"broken"}) {
		t.Fatalf("report: %+v", rep)
	}
	if rep, err := Check(ctx, path); err != nil || rep.Definitions != 20 {
		t.Fatalf("check after recover: %+v %v", rep, err)
	}
}

func TestRecoverHealthyAndEmpty(t *testing.T) {
	ctx := context.Background()
	path := newStoreFile(t, 5)
	before, _ := os.ReadFile(path)
	rep, err := Recover(ctx, path)
	if err != nil || !rep.Healthy || rep.Backup != "" {
		t.Fatalf("healthy: %+v %v", rep, err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatal("a healthy file was rewritten")
	}

	empty := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err = Recover(ctx, empty)
	if err != nil || len(rep.Recovered) != 0 || rep.Backup == "" {
		t.Fatalf("empty: %+v %v", rep, err)
	}
	if rep, err := Check(ctx, empty); err != nil || rep.Definitions != 0 {
		t.Fatalf("empty after recover: %+v %v", rep, err)
	}
	if _, err := Recover(ctx, filepath.Join(t.TempDir(), "missing.db")); err == nil || errors.Is(err, ErrCorrupt) {
		t.Fatalf("a missing file: %v", err)
	}
}
