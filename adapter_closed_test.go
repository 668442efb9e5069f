package mlbridge_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/store"
)

// After Close, Create and Delete fail with ErrClosed and leave the store as it was. A global
// definition (dspy's ConfigureLM) used to be stored and acknowledged with nil, there being no
// worker left to refuse it; a resource was stored and then failed with ErrClosed, left behind.
func TestAdapterCreateAndDeleteAfterClose(t *testing.T) {
	ctx := context.Background()
	defs := store.NewMemory()
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: testenv.EchoBridge, Python: testenv.Python(t), Logger: quietLogger(t)},
		Size:   1, Store: defs,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Create(ctx, store.Definition{ID: "kept", Kind: "greeting", Spec: map[string]any{"prefix": "hi"}}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []store.Definition{
		{ID: "global", Kind: "greeting", Global: true, Spec: map[string]any{"prefix": "hi"}},
		{ID: "resource", Kind: "greeting", Spec: map[string]any{"prefix": "hi"}},
	} {
		if _, err := p.Create(ctx, d); !errors.Is(err, mlbridge.ErrClosed) {
			t.Errorf("Create %s after Close: %v, want ErrClosed", d.ID, err)
		}
		if _, err := defs.Get(ctx, d.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Create %s after Close changed the store: %v", d.ID, err)
		}
	}
	if err := p.Delete(ctx, "kept"); !errors.Is(err, mlbridge.ErrClosed) {
		t.Errorf("Delete after Close: %v, want ErrClosed", err)
	}
	// the Pool's own Define and Forget, which Create and Delete go through, the same
	if _, err := p.Define(ctx, store.Definition{ID: "defined", Kind: "greeting", Global: true}); !errors.Is(err, mlbridge.ErrClosed) {
		t.Errorf("Define after Close: %v, want ErrClosed", err)
	}
	if _, err := defs.Get(ctx, "defined"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Define after Close changed the store: %v", err)
	}
	if err := p.Forget(ctx, "kept"); !errors.Is(err, mlbridge.ErrClosed) {
		t.Errorf("Forget after Close: %v, want ErrClosed", err)
	}
	if _, err := defs.Get(ctx, "kept"); err != nil {
		t.Errorf("Delete or Forget after Close changed the store: %v", err)
	}
}
