// Package store keeps resource definitions — programs, chains, models, framework
// configuration — on the Go host, so that any worker can build any resource, a dead worker
// loses nothing, and (with a persistent store) definitions survive a host restart.
//
// Workers only cache what they built from a definition, keyed by ID and Version.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned for an unknown ID.
var ErrNotFound = errors.New("store: definition not found")

// ErrExists is returned by Put for a Definition with IfAbsent whose ID is stored.
var ErrExists = errors.New("store: definition exists")

// ErrConflict is returned by Put for a Definition with IfVersion when the stored definition
// is not at that Version any more (another writer replaced or deleted it since it was read).
var ErrConflict = errors.New("store: definition changed since it was read")

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
	IfAbsent bool `json:"-" msgpack:"-"`
	// IfVersion, when not 0, makes Put a compare-and-set: it fails with ErrConflict, storing
	// nothing, unless the stored definition of this ID is at this Version — the one the
	// caller read. Of writers updating what they read at one Version, exactly one succeeds
	// and the others learn it, instead of the last one silently overwriting the rest. A
	// condition of the write, never stored; with IfAbsent it is ErrConflict.
	IfVersion uint64    `json:"-" msgpack:"-"`
	UpdatedAt time.Time `json:"updated_at"`
}

// checkConditions is the error of a write whose conditions cannot both hold.
func checkConditions(d Definition) error {
	if d.IfAbsent && d.IfVersion != 0 {
		return fmt.Errorf("%w: %q: IfAbsent and IfVersion together", ErrConflict, d.ID)
	}
	return nil
}

// conflict is the ErrConflict of a write that expected version want of id: the stored one is
// at have, or gone.
func conflict(id string, want, have uint64, stored bool) error {
	if !stored {
		return fmt.Errorf("%w: %q: expected version %d, it is no longer stored", ErrConflict, id, want)
	}
	return fmt.Errorf("%w: %q: expected version %d, stored version %d", ErrConflict, id, want, have)
}

// Store holds definitions. Implementations are safe for concurrent use.
type Store interface {
	// Put stores d, assigning the next Version (and UpdatedAt); it returns the stored copy.
	// An id's versions never repeat, also across a Delete and a new Put of it.
	// With d.IfAbsent it fails with ErrExists, storing nothing, when d.ID is stored; with
	// d.IfVersion, ErrConflict unless d.ID is stored at that Version.
	Put(ctx context.Context, d Definition) (Definition, error)
	// Get returns id's definition; an id not stored is an error matching ErrNotFound (a pool
	// reports any other failure as unavailable, not as a missing definition).
	Get(ctx context.Context, id string) (Definition, error)
	// Delete removes id (ErrNotFound when it is not stored). A store shared by several
	// writers may refuse a delete that raced a newer write with ErrConflict (mlnats.KVStore).
	Delete(ctx context.Context, id string) error
	// List returns all definitions, ordered by ID.
	List(ctx context.Context) ([]Definition, error)
	Close() error
}
