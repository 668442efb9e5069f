package mlbridge

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/mlbridge/mlbridge/store"
)

// Refresh brings the running workers up to date with the store's current definition of id,
// for a store that other processes write too (a JetStream KV bucket shared by the nodes of
// a deployment: mlnats.NodeConfig.Definitions calls Refresh for every change it watches).
//
//   - A global definition (framework configuration) is applied to every running worker
//     that does not hold its current version, as Define does for a local change.
//   - Any other definition is rebuilt on the workers that built an older version (the
//     others build it on the first call that Uses it, as always).
//   - A definition gone from the store is dropped from every worker.
//
// Calls stay correct without Refresh (a call that Uses a definition reads its version
// first); Refresh is what makes a global change reach workers that take no such call, and
// moves a rebuild off the next call's path. A worker that refuses the definition keeps
// what it had; the error says which.
func (p *Pool) Refresh(ctx context.Context, id string) error {
	d, err := p.store.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		p.dropFromWorkers(ctx, id)
		return nil
	}
	if err != nil {
		return err
	}
	workers := p.runningWorkers()
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for i, pw := range workers {
		pw.resMu.Lock()
		v, had := pw.loaded[id]
		pw.resMu.Unlock()
		if (had && v == d.Version) || (!had && !d.Global) {
			continue
		}
		wg.Go(func() {
			if err := p.ensure(ctx, pw, []string{id}); err != nil && !errors.Is(err, ErrWorkerExited) {
				errs[i] = fmt.Errorf("worker pid %d: %w", pw.w.Pid(), err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
