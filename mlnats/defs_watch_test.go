package mlnats_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
	"github.com/mlbridge/mlbridge/store"
)

// waitFor polls cond every 5 ms until it holds (returning how long that took) or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s: not after 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// reachBound is the promise: a definition made through any node reaches every
// node's workers within 1 s.
const reachBound = time.Second

// reachedWithin is waitFor, measured from when the write returned, failing (after logging
// the time it did take) when that is over reachBound.
func reachedWithin(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	took := waitFor(t, what, cond)
	t.Logf("%s %v after the write returned", what, took)
	if took > reachBound {
		t.Errorf("%s: took %v, over the bound of %v", what, took, reachBound)
	}
	return took
}

// resources is what the worker of p (one worker) has built: id → version.
func resources(t *testing.T, p *mlbridge.Pool) map[string]uint64 {
	t.Helper()
	rs, err := mlbridge.Decode[[]struct {
		ID      string `msgpack:"id"`
		Version uint64 `msgpack:"version"`
	}](p.Call(context.Background(), "list_resources", nil))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, r := range rs {
		out[r.ID] = r.Version
	}
	return out
}

// TestDefinitionsReachEveryNode: definitions made through node A reach node B's running
// workers through the KV bucket's Watch within 1 s of the write returning — a global one is
// applied, a rebuilt one replaces the old version, a deleted one is dropped, all without a
// call on B — and they survive both nodes' restarts.
func TestDefinitionsReachEveryNode(t *testing.T) {
	e := embedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js, err := jetstream.New(connect(t, e))
	if err != nil {
		t.Fatal(err)
	}
	start := func() *testNode {
		s, err := mlnats.OpenKVStore(ctx, js, "defs")
		if err != nil {
			t.Fatal(err)
		}
		return startNodeWith(t, e, func(c *mlnats.NodeConfig) { c.Definitions = s },
			func(c *mlbridge.PoolConfig) { c.Store = s })
	}
	a, b := start(), start()
	setting := func(p *mlbridge.Pool) any {
		v, err := mlbridge.Decode[map[string]any](p.Call(ctx, "get_setting", map[string]any{"name": "mode"}))
		if err != nil {
			t.Fatal(err)
		}
		return v["value"]
	}
	if setting(b.pool) != nil {
		t.Fatal("setting present before it was defined")
	}

	// A global definition through A: B's running worker gets it with no call of its own.
	if _, err := a.pool.Create(ctx, store.Definition{ID: "cfg", Kind: "config", Global: true, Spec: map[string]any{"mode": "fast"}}); err != nil {
		t.Fatal(err)
	}
	reachedWithin(t, "global definition applied on node B's worker", func() bool { return setting(b.pool) == "fast" })

	// A program through A, executed by B's running worker.
	if _, err := a.pool.Create(ctx, store.Definition{ID: "hello", Kind: "greeting", Spec: map[string]any{"prefix": "hi"}}); err != nil {
		t.Fatal(err)
	}
	if got, err := mlbridge.Decode[string](b.pool.Execute(ctx, "hello", map[string]any{"name": "bob"})); err != nil || got != "hi bob" {
		t.Fatalf("B executes A's program: %q, %v", got, err)
	}
	// A new version through A: B's worker, which built the old one, rebuilds now.
	d, err := a.pool.Create(ctx, store.Definition{ID: "hello", Kind: "greeting", Spec: map[string]any{"prefix": "hey"}})
	if err != nil {
		t.Fatal(err)
	}
	reachedWithin(t, "new version rebuilt on node B's worker", func() bool { return resources(t, b.pool)["hello"] == d.Version })
	if got, err := mlbridge.Decode[string](b.pool.Execute(ctx, "hello", map[string]any{"name": "bob"})); err != nil || got != "hey bob" {
		t.Fatalf("B executes the new version: %q, %v", got, err)
	}
	// Deleted through A: dropped from B's worker.
	if err := a.pool.Delete(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	reachedWithin(t, "deleted definition dropped from node B's worker", func() bool { _, held := resources(t, b.pool)["hello"]; return !held })

	// Restarts: B goes, C comes; then A goes. What A defined is still there for C, and a
	// client reaches it over NATS through C.
	if _, err := a.pool.Create(ctx, store.Definition{ID: "bye", Kind: "greeting", Spec: map[string]any{"prefix": "bye"}}); err != nil {
		t.Fatal(err)
	}
	b.kill()
	c := start()
	if got := setting(c.pool); got != "fast" {
		t.Fatalf("global definition on a restarted node: %v", got)
	}
	a.kill()
	r := dial(t, e, mlnats.Options{})
	if got, err := mlbridge.Decode[string](r.Execute(ctx, "bye", map[string]any{"name": "ann"})); err != nil || got != "bye ann" {
		t.Fatalf("program defined through a node that left, run through another: %q, %v", got, err)
	}
	if resources(t, c.pool)["bye"] == 0 {
		t.Fatal("the program ran somewhere else than node C")
	}
}
