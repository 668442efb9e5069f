package mlnats

import (
	"context"
	"fmt"
	"time"
)

// refreshTimeout bounds bringing one adapter's workers up to date with one change.
const refreshTimeout = time.Minute

// watch follows the definitions bucket: each change is handed to every adapter that is a
// Refresher. The watch starts before the catch-up pass over what is stored, so nothing
// written while the node started is missed (a change seen twice costs nothing: Refresh
// does nothing when the workers hold the current version).
func (n *Node) watch(s *KVStore) error {
	var refreshers []Refresher
	for _, b := range n.bridges {
		if r, ok := b.a.(Refresher); ok {
			refreshers = append(refreshers, r)
		}
	}
	if len(refreshers) == 0 {
		n.log.Warn("mlnats: NodeConfig.Definitions is set but no adapter can refresh its workers (none is a *mlbridge.Pool)")
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	changes, err := s.Watch(ctx)
	if err != nil {
		cancel()
		return fmt.Errorf("mlnats: watching definitions: %w", err)
	}
	n.stopWatch = cancel
	n.watching.Go(func() {
		if defs, err := s.List(ctx); err != nil {
			n.log.Warn("mlnats: listing definitions to catch up", "err", err)
		} else {
			for _, d := range defs {
				n.refresh(ctx, refreshers, d.ID)
			}
		}
		for c := range changes {
			n.refresh(ctx, refreshers, c.ID)
		}
	})
	return nil
}

func (n *Node) refresh(ctx context.Context, refreshers []Refresher, id string) {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	for _, r := range refreshers {
		if err := r.Refresh(ctx, id); err != nil && ctx.Err() == nil {
			n.log.Warn("mlnats: a changed definition did not reach every worker", "id", id, "err", err)
		}
	}
}
