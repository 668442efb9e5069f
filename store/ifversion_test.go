package store

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// IfVersion is a compare-and-set on the Version read, in both local stores.
func TestIfVersion(t *testing.T) {
	bolt, err := OpenBolt(filepath.Join(t.TempDir(), "defs.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	for name, s := range map[string]Store{"memory": NewMemory(), "bolt": bolt} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if _, err := s.Put(ctx, Definition{ID: "p", Kind: "program", IfVersion: 1}); !errors.Is(err, ErrConflict) {
				t.Fatalf("IfVersion on an id never stored: %v, want ErrConflict", err)
			}
			v1, err := s.Put(ctx, Definition{ID: "p", Kind: "program", Spec: map[string]any{"n": 0}})
			if err != nil {
				t.Fatal(err)
			}
			v2, err := s.Put(ctx, Definition{ID: "p", Kind: "program", Spec: map[string]any{"n": 1}, IfVersion: v1.Version})
			if err != nil || v2.Version != v1.Version+1 || v2.IfVersion != 0 {
				t.Fatalf("update at the version read: %+v %v", v2, err)
			}
			// A writer that read v1 is too late now.
			if _, err := s.Put(ctx, Definition{ID: "p", Kind: "program", Spec: map[string]any{"n": 99}, IfVersion: v1.Version}); !errors.Is(err, ErrConflict) {
				t.Fatalf("update at a stale version: %v, want ErrConflict", err)
			}
			if got, _ := s.Get(ctx, "p"); got.Version != v2.Version || got.Spec["n"] == 99 {
				t.Fatalf("a refused update changed the definition: %+v", got)
			}
			if _, err := s.Put(ctx, Definition{ID: "p", IfAbsent: true, IfVersion: v2.Version}); !errors.Is(err, ErrConflict) {
				t.Fatalf("IfAbsent with IfVersion: %v, want ErrConflict", err)
			}
			twoWriters(t, s, v2.Version)
			raceIfVersion(t, s)
			if err := s.Delete(ctx, "p"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Put(ctx, Definition{ID: "p", Kind: "program", IfVersion: v2.Version}); !errors.Is(err, ErrConflict) {
				t.Fatalf("IfVersion on a deleted id: %v, want ErrConflict", err)
			}
			// ABA: deleted and made again, an id's versions go on; a writer that read a
			// version before the delete cannot overwrite the new definition.
			a, err := s.Put(ctx, Definition{ID: "aba", Kind: "program"})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, "aba"); err != nil {
				t.Fatal(err)
			}
			again, err := s.Put(ctx, Definition{ID: "aba", Kind: "program", Spec: map[string]any{"owner": "new"}})
			if err != nil || again.Version <= a.Version {
				t.Fatalf("made again after a delete: version %d (%v), want above %d", again.Version, err, a.Version)
			}
			if _, err := s.Put(ctx, Definition{ID: "aba", Kind: "program", Spec: map[string]any{"owner": "stale"}, IfVersion: a.Version}); !errors.Is(err, ErrConflict) {
				t.Fatalf("a writer that read the deleted definition: %v, want ErrConflict", err)
			}
			if got, _ := s.Get(ctx, "aba"); got.Spec["owner"] != "new" {
				t.Fatalf("the stale writer overwrote the new definition: %+v", got)
			}
		})
	}
}

// twoWriters: two writers that read "p" at version read update it at once: exactly one wins,
// the other gets ErrConflict; the stored definition is the winner's.
func twoWriters(t *testing.T, s Store, read uint64) {
	t.Helper()
	start := make(chan struct{})
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			<-start
			_, errs[i] = s.Put(context.Background(), Definition{ID: "p", Kind: "program", Spec: map[string]any{"writer": int64(i)}, IfVersion: read})
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner == -1:
			winner = i
		case errors.Is(err, ErrConflict):
		default:
			t.Fatalf("writers: %v", errs)
		}
	}
	if winner == -1 {
		t.Fatalf("no writer won: %v", errs)
	}
	if got, _ := s.Get(context.Background(), "p"); toInt(got.Spec["writer"]) != int64(winner) || got.Version != read+1 {
		t.Fatalf("stored %+v, winner %d", got, winner)
	}
}

// raceIfVersion: 8 writers each add one to a counter in "count" 5 times by read, add, Put at
// the version read, and reread on ErrConflict. Each round exactly one writer of a version
// wins; no increment is lost.
func raceIfVersion(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Put(ctx, Definition{ID: "count", Kind: "counter", Spec: map[string]any{"n": int64(0)}}); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 5
	var conflicts atomic.Int32
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for done := 0; done < each; {
				d, err := s.Get(ctx, "count")
				if err != nil {
					t.Error(err)
					return
				}
				n := toInt(d.Spec["n"])
				runtime.Gosched() // let another writer read the same version
				_, err = s.Put(ctx, Definition{ID: "count", Kind: "counter", Spec: map[string]any{"n": n + 1}, IfVersion: d.Version})
				switch {
				case err == nil:
					done++
				case errors.Is(err, ErrConflict):
					conflicts.Add(1)
				default:
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got, err := s.Get(ctx, "count")
	if err != nil || toInt(got.Spec["n"]) != writers*each {
		t.Fatalf("counter %v after %d increments (%v); an update was lost", got.Spec["n"], writers*each, err)
	}
	t.Logf("%d increments by %d writers, %d conflicts retried", writers*each, writers, conflicts.Load())
}

// toInt reads a number as the store gives it back (int64 in memory, any msgpack int from bolt).
func toInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case int8:
		return int64(n)
	case int16:
		return int64(n)
	case int32:
		return int64(n)
	case uint8:
		return int64(n)
	case uint16:
		return int64(n)
	case uint32:
		return int64(n)
	case uint64:
		return int64(n)
	case int:
		return int64(n)
	}
	return -1
}
