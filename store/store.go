// Package store keeps resource definitions — programs, chains, models, framework
// configuration — on the Go host, so that any worker can build any resource, a dead worker
// loses nothing, and (with a persistent store) definitions survive a host restart.
//
// Workers only cache what they built from a definition, keyed by ID and Version.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned for an unknown ID.
var ErrNotFound = errors.New("store: definition not found")

// ErrExists is returned by Put for a Definition with IfAbsent whose ID is stored.
var ErrExists = errors.New("store: definition exists")

// Definition describes one resource well enough for any worker to build it.
type Definition struct {
	ID   string `json:"id"`
	Kind string `json:"kind"` // "program", "chain", "model", "config", ...
	// Version increases on every Put; workers rebuild when it changes.
	Version uint64 `json:"version"`
	// Spec is the definition in the bridge's own terms (msgpack-encodable values).
	Spec map[string]any `json:"spec"`
	// State is trained or optimized state, opaque to the host (e.g. a pickled model).
	State []byte `json:"state,omitempty"`
	// Global definitions (framework configuration such as the LM) are applied to every
	// worker when it starts, before it takes calls.
	Global bool `json:"global,omitempty"`
	// Requires names resources this one is built from (a chain's model): a worker builds them
	// first.
	Requires []string `json:"requires,omitempty"`
	// IfAbsent makes Put fail with ErrExists when a definition with this ID is stored, checked
	// in the same step as the write: two callers choosing one ID cannot both succeed. It is a
	// condition of the write, never stored.
	IfAbsent  bool      `json:"-" msgpack:"-"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Store holds definitions. Implementations are safe for concurrent use.
type Store interface {
	// Put stores d, assigning the next Version (and UpdatedAt); it returns the stored copy.
	// With d.IfAbsent it fails with ErrExists, storing nothing, when d.ID is stored.
	Put(ctx context.Context, d Definition) (Definition, error)
	Get(ctx context.Context, id string) (Definition, error)
	Delete(ctx context.Context, id string) error
	// List returns all definitions, ordered by ID.
	List(ctx context.Context) ([]Definition, error)
	Close() error
}
