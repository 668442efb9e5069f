package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// Memory is a Store that lives as long as the process.
type Memory struct {
	mu   sync.RWMutex
	defs map[string]Definition
	// deleted: the last version of each deleted id, so that a definition made again goes on
	// from it — versions of an id never repeat, and an IfVersion read before a delete cannot
	// match the definition made after it
	deleted map[string]uint64
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{defs: map[string]Definition{}, deleted: map[string]uint64{}}
}

func (m *Memory) Put(_ context.Context, d Definition) (Definition, error) {
	if d.ID == "" {
		return Definition{}, fmt.Errorf("store: definition without an ID")
	}
	if err := checkConditions(d); err != nil {
		return Definition{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	prev, exists := m.defs[d.ID]
	if exists && d.IfAbsent {
		return Definition{}, fmt.Errorf("%w: %q", ErrExists, d.ID)
	}
	if d.IfVersion != 0 && (!exists || prev.Version != d.IfVersion) {
		return Definition{}, conflict(d.ID, d.IfVersion, prev.Version, exists)
	}
	d.IfAbsent, d.IfVersion = false, 0
	d.Version = max(prev.Version, m.deleted[d.ID]) + 1
	d.UpdatedAt = time.Now().UTC()
	m.defs[d.ID] = d
	delete(m.deleted, d.ID)
	return d, nil
}

func (m *Memory) Get(_ context.Context, id string) (Definition, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	d, ok := m.defs[id]
	if !ok {
		return Definition{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return d, nil
}

func (m *Memory) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.defs[id]
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	delete(m.defs, id)
	m.deleted[id] = d.Version
	return nil
}

func (m *Memory) List(_ context.Context) ([]Definition, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ids := slices.Sorted(maps.Keys(m.defs))
	out := make([]Definition, 0, len(ids))
	for _, id := range ids {
		out = append(out, m.defs[id])
	}
	return out, nil
}

func (m *Memory) Close() error { return nil }
