package mlbridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/mlbridge/mlbridge/internal/worker"
	"github.com/mlbridge/mlbridge/store"
)

// Built-in ops every BaseBridge answers: build a resource from its definition and cache it
// by id and version; drop it.
const (
	opDefine = "define_resource"
	opForget = "forget_resource"
)

type defineArgs struct {
	ID      string         `msgpack:"id"`
	Kind    string         `msgpack:"kind"`
	Version uint64         `msgpack:"version"`
	Spec    map[string]any `msgpack:"spec"`
	State   []byte         `msgpack:"state"`
	Global  bool           `msgpack:"is_global"`
}

// ensure makes sure pw has built each resource at its current version, sending the
// definition when it has not. Concurrent calls needing the same resource on the same
// worker share one define.
func (p *Pool) ensure(ctx context.Context, pw *poolWorker, ids []string) error {
	for _, id := range ids {
		if err := p.ensureOne(ctx, pw, id); err != nil {
			return err
		}
	}
	return nil
}

func (p *Pool) ensureOne(ctx context.Context, pw *poolWorker, id string) error {
	return p.ensureDepth(ctx, pw, id, 0)
}

// maxRequiresDepth bounds chains of Requires (and so breaks cycles).
const maxRequiresDepth = 8

func (p *Pool) ensureDepth(ctx context.Context, pw *poolWorker, id string, depth int) error {
	if depth > maxRequiresDepth {
		return fmt.Errorf("%w: resource %q: requirements nest deeper than %d (a cycle?)", ErrInvalidArgument, id, maxRequiresDepth)
	}
	for {
		d, err := p.getDefinition(ctx, id)
		if err != nil {
			return err
		}
		for _, r := range d.Requires {
			if err := p.ensureDepth(ctx, pw, r, depth+1); err != nil {
				return fmt.Errorf("resource %q requires %q: %w", id, r, err)
			}
		}
		pw.resMu.Lock()
		if pw.loaded[id] == d.Version {
			pw.resMu.Unlock()
			return nil
		}
		if wait, busy := pw.loading[id]; busy {
			pw.resMu.Unlock()
			select {
			case <-wait:
				continue // look again: it may have loaded, or failed
			case <-ctx.Done():
				return worker.CtxError("waiting for resource "+id, ctx.Err())
			}
		}
		done := make(chan struct{})
		pw.loading[id] = done
		pw.resMu.Unlock()

		err = defineOn(ctx, pw, d)

		pw.resMu.Lock()
		delete(pw.loading, id)
		if err == nil {
			pw.loaded[id] = d.Version
		}
		pw.resMu.Unlock()
		close(done)
		return err
	}
}

func defineOn(ctx context.Context, pw *poolWorker, d store.Definition) error {
	c, err := pw.w.Send(ctx, opDefine, defineArgs{
		ID: d.ID, Kind: d.Kind, Version: d.Version, Spec: d.Spec, State: d.State, Global: d.Global,
	}, false)
	if err != nil {
		return err
	}
	if _, err := c.Result(ctx); err != nil {
		return fmt.Errorf("defining %s %q (version %d): %w", d.Kind, d.ID, d.Version, err)
	}
	return nil
}

// applyGlobals replays every global definition (framework configuration) on a new worker,
// so that no worker runs with other settings than the rest.
func (p *Pool) applyGlobals(ctx context.Context, pw *poolWorker) error {
	defs, err := p.store.List(ctx)
	if err != nil {
		return err
	}
	for _, d := range defs {
		if !d.Global {
			continue
		}
		if err := defineOn(ctx, pw, d); err != nil {
			return err
		}
		pw.loaded[d.ID] = d.Version
	}
	return nil
}

// Forget deletes a definition from the store and drops what workers built from it.
func (p *Pool) Forget(ctx context.Context, id string) error {
	if err := p.closedErr(); err != nil {
		return err // as Delete: a closed pool changes no store
	}
	if err := p.store.Delete(ctx, id); err != nil {
		return err
	}
	p.dropFromWorkers(ctx, id)
	return nil
}

// dropFromWorkers makes every running worker forget what it built from id.
func (p *Pool) dropFromWorkers(ctx context.Context, id string) {
	for _, pw := range p.runningWorkers() {
		pw.resMu.Lock()
		_, had := pw.loaded[id]
		delete(pw.loaded, id)
		pw.resMu.Unlock()
		if had {
			if c, err := pw.w.Send(ctx, opForget, map[string]any{"id": id}, false); err == nil {
				_, _ = c.Result(ctx)
			}
		}
	}
}

func (p *Pool) runningWorkers() []*poolWorker {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*poolWorker(nil), p.workers...)
}

// getDefinition reads id from the store: ErrNotFound when it holds none; any other failure
// (a store that cannot be read now: a damaged file, a KV bucket out of reach) is
// ErrUnavailable, not "not found", so that a caller retries it rather than re-creating id.
func (p *Pool) getDefinition(ctx context.Context, id string) (store.Definition, error) {
	d, err := p.store.Get(ctx, id)
	switch {
	case err == nil:
		return d, nil
	case errors.Is(err, store.ErrNotFound):
		return d, fmt.Errorf("%w: resource %q: %w", ErrNotFound, id, err)
	case errors.Is(err, ErrUnavailable) || ctx.Err() != nil:
		return d, fmt.Errorf("resource %q: reading the store: %w", id, err)
	}
	return d, fmt.Errorf("%w: resource %q: reading the store: %w", ErrUnavailable, id, err)
}
