package mlnats_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
	"github.com/mlbridge/mlbridge/store"
)

func TestKVStore(t *testing.T) {
	e := embedded(t)
	js, err := jetstream.New(connect(t, e))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := mlnats.OpenKVStore(ctx, js, "defs")
	if err != nil {
		t.Fatal(err)
	}
	changes, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "p1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	d1, err := s.Put(ctx, store.Definition{ID: "p1", Kind: "program", Spec: map[string]any{"signature": "q -> a"}, State: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	d2, err := s.Put(ctx, store.Definition{ID: "p1", Kind: "program", Spec: map[string]any{"signature": "q -> a, b"}})
	if err != nil || d2.Version <= d1.Version {
		t.Fatalf("second put: %+v %v (first version %d)", d2, err, d1.Version)
	}
	if _, err := s.Put(ctx, store.Definition{ID: "p1", IfAbsent: true}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("IfAbsent over a stored id: %v", err)
	}
	got, err := s.Get(ctx, "p1")
	if err != nil || got.Version != d2.Version || got.Spec["signature"] != "q -> a, b" || got.UpdatedAt.IsZero() {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := s.Put(ctx, store.Definition{ID: "lm: weird/id", Kind: "config", Global: true}); err != nil {
		t.Fatal(err)
	}
	all, err := s.List(ctx)
	if err != nil || len(all) != 2 || all[0].ID != "lm: weird/id" || !all[0].Global || all[1].ID != "p1" {
		t.Fatalf("list: %+v %v", all, err)
	}
	if err := s.Delete(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "p1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	d3, err := s.Put(ctx, store.Definition{ID: "p1", Kind: "program", IfAbsent: true})
	if err != nil || d3.Version <= d2.Version {
		t.Fatalf("re-create after delete: %+v %v; versions must keep growing", d3, err)
	}
	// Watch saw every change, in order.
	var seen []string
	for len(seen) < 5 {
		select {
		case c := <-changes:
			s := c.ID
			if c.Deleted {
				s += " deleted"
			}
			seen = append(seen, s)
		case <-time.After(5 * time.Second):
			t.Fatalf("watch saw only %v", seen)
		}
	}
	t.Logf("watch: %v", seen)

	// Of 16 writers choosing one id with IfAbsent, exactly one succeeds.
	var wins, lost atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			_, err := s.Put(ctx, store.Definition{ID: "chosen", Kind: "program", IfAbsent: true})
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, store.ErrExists):
				lost.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || lost.Load() != 15 {
		t.Fatalf("%d won, %d ErrExists", wins.Load(), lost.Load())
	}

	// Two nodes' pools on the one bucket: a definition created through one node is built
	// by the other.
	p1 := openPool(t, func(c *mlbridge.PoolConfig) { c.Store = s })
	p2 := openPool(t, func(c *mlbridge.PoolConfig) { c.Store = s })
	if _, err := p1.Create(ctx, store.Definition{ID: "g", Kind: "greeting", Spec: map[string]any{"prefix": "hey"}}); err != nil {
		t.Fatal(err)
	}
	v, err := mlbridge.Decode[string](p2.Execute(ctx, "g", map[string]any{"name": "Bo"}))
	if err != nil || v != "hey Bo" {
		t.Fatalf("execute on the other pool: %q %v", v, err)
	}
}
