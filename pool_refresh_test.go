package mlbridge_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/store"
)

// TestPoolRefresh: a definition another process wrote to the pool's store reaches the
// running workers on Refresh — a global one everywhere, a newer version where an older one
// was built, a deletion everywhere — and a definition the workers refuse is a
// *RemoteError that names the worker, with the workers left as they were.
func TestPoolRefresh(t *testing.T) {
	s := store.NewMemory()
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.Store = s })
	ctx := context.Background()
	setting := func() map[int]string { // pid → value, from both workers
		seen := map[int]string{}
		for len(seen) < 2 {
			got := poolCall[struct {
				Pid   int    `msgpack:"pid"`
				Value string `msgpack:"value"`
			}](t, p, "get_setting", args("name", "mode"))
			seen[got.Pid] = got.Value
		}
		return seen
	}

	// Written behind the pool's back, as another node would.
	if _, err := s.Put(ctx, store.Definition{ID: "cfg", Kind: "config", Global: true, Spec: map[string]any{"mode": "fast"}}); err != nil {
		t.Fatal(err)
	}
	for pid, v := range setting() {
		if v != "" {
			t.Fatalf("worker %d has the setting before Refresh: %q", pid, v)
		}
	}
	if err := p.Refresh(ctx, "cfg"); err != nil {
		t.Fatal(err)
	}
	for pid, v := range setting() {
		if v != "fast" {
			t.Fatalf("worker %d after Refresh: %q", pid, v)
		}
	}

	// Refused: both workers report it; the setting stays.
	if _, err := s.Put(ctx, store.Definition{ID: "bad", Kind: "no-such-kind", Global: true}); err != nil {
		t.Fatal(err)
	}
	err := p.Refresh(ctx, "bad")
	if re, ok := errors.AsType[*mlbridge.RemoteError](err); !ok || !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("refused definition: %v (remote error %v)", err, re)
	}
	for pid, v := range setting() {
		if v != "fast" {
			t.Fatalf("worker %d after a refused definition: %q", pid, v)
		}
	}

	// Deleted behind the pool's back: Refresh drops it from the workers.
	if err := s.Delete(ctx, "cfg"); err != nil {
		t.Fatal(err)
	}
	if err := p.Refresh(ctx, "cfg"); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		rs := poolCall[[]struct {
			ID string `msgpack:"id"`
		}](t, p, "list_resources", nil)
		for _, r := range rs {
			if r.ID == "cfg" {
				t.Fatal("a worker still holds a deleted definition")
			}
		}
	}
}
