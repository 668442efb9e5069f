package store

import (
	"context"
	"errors"
	"path/filepath"
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
	if err := s.Delete(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "p1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestMemory(t *testing.T) { testStore(t, NewMemory()) }

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
