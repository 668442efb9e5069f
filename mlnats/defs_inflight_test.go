package mlnats_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
	"github.com/mlbridge/mlbridge/store"
)

// TestDefinitionDeletedDuringCall: a definition is deleted through node A while a call
// that Uses it runs on node B. The call finishes (it had what it needed), B's worker drops
// the definition once the call is done, and the next call that uses it fails with
// ErrNotFound.
func TestDefinitionDeletedDuringCall(t *testing.T) {
	e := embedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kv := kvStore(t, e, "defs")
	start := func() *testNode {
		return startNodeWith(t, e, func(c *mlnats.NodeConfig) { c.Definitions = kv }, func(c *mlbridge.PoolConfig) { c.Store = kv })
	}
	a, b := start(), start()
	if _, err := a.pool.Create(ctx, store.Definition{ID: "hello", Kind: "greeting", Spec: map[string]any{"prefix": "hi"}}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.pool.Call(ctx, "sleep", map[string]any{"seconds": 1}, mlbridge.Uses("hello"))
		done <- err
	}()
	waitFor(t, "B's worker built the definition", func() bool { return resources(t, b.pool)["hello"] != 0 })
	if err := a.pool.Delete(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the call in flight when its definition was deleted: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call in flight when its definition was deleted did not return")
	}
	waitFor(t, "B's worker dropped the definition", func() bool { _, held := resources(t, b.pool)["hello"]; return !held })
	r := dial(t, e, mlnats.Options{})
	_, err := r.Call(ctx, "greet", map[string]any{"id": "hello", "name": "x"}, mlbridge.Uses("hello"))
	if !errors.Is(err, mlbridge.ErrNotFound) {
		t.Fatalf("a call using the deleted definition: %v, want ErrNotFound", err)
	}
}
