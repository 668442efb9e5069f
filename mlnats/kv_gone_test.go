package mlnats_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
	"github.com/mlbridge/mlbridge/store"
)

func unavailable(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, mlbridge.ErrUnavailable) {
		t.Errorf("%s with the definitions bucket deleted: %v, want ErrUnavailable", what, err)
	}
}

// TestKVBucketDeleted: the definitions bucket is deleted under a node that uses and watches
// it. Every use of the store fails with mlbridge.ErrUnavailable (untyped errors before);
// once the bucket is made again, the node's watch follows it (it had ended for good).
func TestKVBucketDeleted(t *testing.T) {
	e := embedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js, err := jetstream.New(connect(t, e))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := mlnats.OpenKVStore(ctx, js, "defs")
	if err != nil {
		t.Fatal(err)
	}
	n := startNodeWith(t, e, func(c *mlnats.NodeConfig) { c.Definitions = kv }, func(c *mlbridge.PoolConfig) { c.Store = kv })
	r := dial(t, e, mlnats.Options{})
	if _, err := r.Create(ctx, store.Definition{ID: "hello", Kind: "greeting", Spec: map[string]any{"prefix": "hi"}}); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteKeyValue(ctx, "defs"); err != nil {
		t.Fatal(err)
	}
	// Every use of the store fails with ErrUnavailable, through the node as directly.
	_, err = r.Execute(ctx, "hello", map[string]any{"name": "x"})
	unavailable(t, "Execute through a node", err)
	_, err = r.Create(ctx, store.Definition{ID: "hello2", Kind: "greeting", Spec: map[string]any{"prefix": "hi"}})
	unavailable(t, "Create through a node", err)
	_, err = r.Get(ctx, "hello")
	unavailable(t, "Get through a node", err)
	_, err = r.List(ctx, "")
	unavailable(t, "List through a node", err)
	_, err = kv.Put(ctx, store.Definition{ID: "x", Kind: "greeting"})
	unavailable(t, "Put", err)
	_, err = kv.Get(ctx, "hello")
	unavailable(t, "Get", err)
	unavailable(t, "Delete", kv.Delete(ctx, "hello"))
	_, err = kv.List(ctx)
	unavailable(t, "List", err)

	// Made again (another node's OpenKVStore): the node's watch follows the new bucket.
	again, err := mlnats.OpenKVStore(ctx, js, "defs")
	if err != nil {
		t.Fatal(err)
	}
	made := time.Now()
	if _, err := again.Put(ctx, store.Definition{ID: "cfg", Kind: "config", Global: true, Spec: map[string]any{"mode": "again"}}); err != nil {
		t.Fatal(err)
	}
	for {
		v, err := mlbridge.Decode[map[string]any](n.pool.Call(ctx, "get_setting", map[string]any{"name": "mode"}))
		if err != nil {
			t.Fatal(err)
		}
		if v["value"] == "again" {
			break
		}
		if time.Since(made) > 5*time.Second {
			t.Fatal("a definition written in the bucket made again did not reach the node's worker within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("the node's worker has the new bucket's definition %v after it was made", time.Since(made))
}
