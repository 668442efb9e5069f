package mlbridge

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/mlbridge/mlbridge/store"
)

// Adapter is one framework behind mlbridge, whatever the framework: its description, the
// resources it builds from host-owned definitions (programs, chains, models), and calls to any
// of its ops. Framework-specific clients (DSPy programs, LangChain chains, scikit-learn
// models) are thin layers over it. *Pool implements it; a Registry hands them out by name.
type Adapter interface {
	// Info describes the framework as a worker announced it: name, version, capabilities and
	// handlers with their kinds.
	Info() Info

	// Create stores a resource definition and builds it once on a worker, so that a bad
	// definition fails here rather than on first use; a refused definition is not kept.
	Create(ctx context.Context, d store.Definition) (store.Definition, error)
	// Execute runs resource id on inputs (the bridge's generic "execute" op).
	Execute(ctx context.Context, id string, inputs map[string]any) (Result, error)
	// Describe reports what a worker built from resource id.
	Describe(ctx context.Context, id string) (map[string]any, error)
	// Get returns the stored definition of id (ErrNotFound if there is none).
	Get(ctx context.Context, id string) (store.Definition, error)
	// List returns the stored definitions of kind ("" for all).
	List(ctx context.Context, kind string) ([]store.Definition, error)
	// Delete removes a definition and the objects workers built from it.
	Delete(ctx context.Context, id string) error

	Call(ctx context.Context, op string, args any, opts ...CallOption) (Result, error)
	Submit(ctx context.Context, op string, args any, opts ...CallOption) *Future
	Stream(ctx context.Context, op string, args any, opts ...CallOption) iter.Seq2[Result, error]

	// Health is nil when every worker is ready to take calls.
	Health(ctx context.Context) error
	Stats() PoolStats
	Close() error
}

var _ Adapter = (*Pool)(nil)

// Info describes the framework, from the most recently started worker's hello.
func (p *Pool) Info() Info {
	if v := p.info.Load(); v != nil {
		return *v
	}
	return Info{}
}

// Create implements Adapter.
func (p *Pool) Create(ctx context.Context, d store.Definition) (store.Definition, error) {
	if d.ID == "" || d.Kind == "" {
		return d, fmt.Errorf("%w: a definition needs an id and a kind", ErrInvalidArgument)
	}
	if err := p.closedErr(); err != nil {
		return d, err // before the store: a closed pool took a global definition and said nil
	}
	if d.Global {
		return p.Define(ctx, d) // applied to every worker, taken back if refused
	}
	prev, prevErr := p.store.Get(ctx, d.ID)
	d, err := p.store.Put(ctx, d)
	if err != nil {
		return d, err
	}
	if _, err := p.Call(ctx, "describe", map[string]any{"id": d.ID}, Uses(d.ID)); err != nil {
		if _, refused := errors.AsType[*RemoteError](err); refused {
			p.restore(ctx, d, prev, prevErr == nil)
		}
		return d, err
	}
	return d, nil
}

// Execute implements Adapter.
func (p *Pool) Execute(ctx context.Context, id string, inputs map[string]any) (Result, error) {
	// An unknown id fails with ErrNotFound when the call's Uses looks it up: no second read
	// of the store on the hot path.
	return p.Call(ctx, "execute", map[string]any{"id": id, "inputs": inputs}, Uses(id))
}

// Describe implements Adapter.
func (p *Pool) Describe(ctx context.Context, id string) (map[string]any, error) {
	if _, err := p.Get(ctx, id); err != nil {
		return nil, err
	}
	return Decode[map[string]any](p.Call(ctx, "describe", map[string]any{"id": id}, Uses(id)))
}

// Get implements Adapter.
func (p *Pool) Get(ctx context.Context, id string) (store.Definition, error) {
	d, err := p.getDefinition(ctx, id)
	if err != nil {
		return d, err
	}
	return d, nil
}

// List implements Adapter.
func (p *Pool) List(ctx context.Context, kind string) ([]store.Definition, error) {
	defs, err := p.store.List(ctx)
	if err != nil || kind == "" {
		return defs, err
	}
	out := defs[:0]
	for _, d := range defs {
		if d.Kind == kind {
			out = append(out, d)
		}
	}
	return out, nil
}

// Delete implements Adapter.
func (p *Pool) Delete(ctx context.Context, id string) error {
	if err := p.closedErr(); err != nil {
		return err
	}
	if _, err := p.Get(ctx, id); err != nil {
		return err
	}
	return p.Forget(ctx, id)
}

// Health implements Adapter.
func (p *Pool) Health(ctx context.Context) error {
	if err := p.Err(); err != nil {
		return err
	}
	if !p.Healthy() {
		return fmt.Errorf("%w: not every worker is ready", ErrUnavailable)
	}
	return nil
}

// closedErr is ErrClosed once Close began. Create, Delete, Define and Forget check it before
// they change the store: with no worker left to refuse it, a definition was stored (or deleted) and the
// call returned nil, or stored and then failed with ErrClosed, leaving it behind.
func (p *Pool) closedErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	return nil
}
