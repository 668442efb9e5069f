package store

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

func testStore(t *testing.T, s Store) {
	ctx := context.Background()
	if _, err := s.Get(ctx, "p1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	if _, err := s.Put(ctx, Definition{}); err == nil {
		t.Fatal("definition without ID accepted")
	}
	d, err := s.Put(ctx, Definition{ID: "p1", Kind: "program", Spec: map[string]any{"signature": "q -> a"}, State: []byte{1, 2}})
	if err != nil || d.Version != 1 {
		t.Fatalf("put: %+v %v", d, err)
	}
	d, err = s.Put(ctx, Definition{ID: "p1", Kind: "program", Spec: map[string]any{"signature": "q -> a, b"}})
	if err != nil || d.Version != 2 {
		t.Fatalf("second put: %+v %v", d, err)
	}
	if _, err := s.Put(ctx, Definition{ID: "lm", Kind: "config", Global: true}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "p1")
	if err != nil || got.Version != 2 || got.Spec["signature"] != "q -> a, b" || got.UpdatedAt.IsZero() {
		t.Fatalf("get: %+v %v", got, err)
	}
	all, err := s.List(ctx)
	if err != nil || len(all) != 2 || all[0].ID != "lm" || !all[0].Global || all[1].ID != "p1" {
		t.Fatalf("list: %+v %v", all, err)
	}
	if _, err := s.Put(ctx, Definition{ID: "p1", Kind: "program", IfAbsent: true}); !errors.Is(err, ErrExists) {
		t.Fatalf("put IfAbsent over a stored id: %v, want ErrExists", err)
	}
	if got, _ := s.Get(ctx, "p1"); got.Version != 2 || got.Spec["signature"] != "q -> a, b" {
		t.Fatalf("a refused IfAbsent put changed the definition: %+v", got)
	}
	if d, err := s.Put(ctx, Definition{ID: "p2", Kind: "program", IfAbsent: true}); err != nil || d.Version != 1 || d.IfAbsent {
		t.Fatalf("put IfAbsent of a new id: %+v %v", d, err)
	}
	if err := s.Delete(ctx, "p2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "p1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestMemory(t *testing.T) { testStore(t, NewMemory()) }

// Of many writers choosing one id with IfAbsent, exactly one succeeds, in both stores.
func TestIfAbsentHasOneWinner(t *testing.T) {
	bolt, err := OpenBolt(filepath.Join(t.TempDir(), "defs.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	for name, s := range map[string]Store{"memory": NewMemory(), "bolt": bolt} {
		t.Run(name, func(t *testing.T) {
			var wins, lost atomic.Int32
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					_, err := s.Put(context.Background(), Definition{ID: "chosen", Kind: "program", IfAbsent: true})
					switch {
					case err == nil:
						wins.Add(1)
					case errors.Is(err, ErrExists):
						lost.Add(1)
					default:
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if wins.Load() != 1 || lost.Load() != 15 {
				t.Fatalf("%d writers succeeded, %d got ErrExists; want 1 and 15", wins.Load(), lost.Load())
			}
		})
	}
}

func TestBolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "defs.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	testStore(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Survives a reopen: what a host restart sees.
	s, err = OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := s.Get(context.Background(), "lm")
	if err != nil || d.Kind != "config" || !d.Global {
		t.Fatalf("after reopen: %+v %v", d, err)
	}
}
