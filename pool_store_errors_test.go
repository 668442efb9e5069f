package mlbridge_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/store"
)

// failingStore is a memory store whose reads fail, while broken is set, as a damaged file or
// an unreachable KV bucket does.
type failingStore struct {
	store.Store
	broken atomic.Bool
}

var errDisk = errors.New("read /var/lib/defs.db: input/output error")

func (s *failingStore) Get(ctx context.Context, id string) (store.Definition, error) {
	if s.broken.Load() {
		return store.Definition{}, errDisk
	}
	return s.Store.Get(ctx, id)
}

// A store that cannot be read is not a definition that does not exist: Get, Describe and a
// call that Uses the definition fail with ErrUnavailable (and the store's own error), not
// ErrNotFound, which would tell the caller to create it again.
func TestStoreReadFailureIsUnavailable(t *testing.T) {
	s := &failingStore{Store: store.NewMemory()}
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.Size, c.Store = 1, s })
	ctx := context.Background()
	if _, err := p.Create(ctx, store.Definition{ID: "r", Kind: "greeting", Spec: map[string]any{"prefix": "hi"}}); err != nil {
		t.Fatal(err)
	}
	s.broken.Store(true)
	_, getErr := p.Get(ctx, "r")
	_, descErr := p.Describe(ctx, "r")
	_, callErr := p.Call(ctx, "describe", map[string]any{"id": "r"}, mlbridge.Uses("r"))
	for what, err := range map[string]error{"Get": getErr, "Describe": descErr, "a call that Uses it": callErr} {
		if !errors.Is(err, mlbridge.ErrUnavailable) || !errors.Is(err, errDisk) || errors.Is(err, mlbridge.ErrNotFound) {
			t.Errorf("%s: %v, want ErrUnavailable with the store's error, not ErrNotFound", what, err)
		}
	}
	s.broken.Store(false)
	if _, err := p.Get(ctx, "gone"); !errors.Is(err, mlbridge.ErrNotFound) || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of an id never stored: %v, want ErrNotFound", err)
	}
}
