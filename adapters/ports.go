package adapters

import (
	"context"

	"github.com/mlbridge/mlbridge/dspy"
)

// PythonPort runs DSPy programs in one Python process.
//
// Deprecated: declare a bridge with mode: process in a mlbridge.Registry and use dspy.Client
// on its adapter; to keep this type while moving calls over, pass that adapter as
// Options.Adapter. `mlbridge migrate --apply` replaces its method calls with p.Client calls;
// neither it nor `go fix` rewrites the type: `mlbridge migrate` reports its uses, which a
// person replaces.
type PythonPort struct {
	// Client is the multi-framework API's DSPy client that the legacy methods call.
	*dspy.Client
	owned bool // Close closes the adapter
}

// NewPythonPort starts one DSPy worker.
//
// Deprecated: use mlbridge.Registry.Adapter on a bridge running dspy.Bridge with mode: process.
// `mlbridge migrate` reports the call; neither it nor `go fix` rewrites it (the call's shape
// changes and a configuration appears).
func NewPythonPort(ctx context.Context, o Options) (*PythonPort, error) {
	c, owned, err := open(ctx, o, 1, apiPort)
	if err != nil {
		return nil, err
	}
	return &PythonPort{Client: c, owned: owned}, nil
}

// PythonPoolV2 runs DSPy programs on a pool of Python workers (default 2), forked from one
// preloaded interpreter so that DSPy is imported once.
//
// Deprecated: declare a bridge in a mlbridge.Registry and use dspy.Client on its adapter; to
// keep this type while moving calls over, pass that adapter as Options.Adapter. `mlbridge
// migrate --apply` replaces its method calls with p.Client calls; neither it nor `go fix`
// rewrites the type: `mlbridge migrate` reports its uses, which a person replaces.
type PythonPoolV2 struct {
	// Client is the multi-framework API's DSPy client that the legacy methods call.
	*dspy.Client
	owned bool // Close closes the adapter
}

// NewPythonPoolV2 starts the pool.
//
// Deprecated: use mlbridge.Registry.Adapter on a bridge running dspy.Bridge. `mlbridge
// migrate` reports the call; neither it nor `go fix` rewrites it (the call's shape changes
// and a configuration appears).
func NewPythonPoolV2(ctx context.Context, o Options) (*PythonPoolV2, error) {
	size := o.Workers
	if size <= 0 {
		size = 2
	}
	c, owned, err := open(ctx, o, size, apiPoolV2)
	if err != nil {
		return nil, err
	}
	return &PythonPoolV2{Client: c, owned: owned}, nil
}

// Close stops the workers, unless the adapter came from Options.Adapter.
func (p *PythonPort) Close() error { return closeOwned(p.Client, p.owned) }

// Close stops the workers, unless the adapter came from Options.Adapter.
func (p *PythonPoolV2) Close() error { return closeOwned(p.Client, p.owned) }

func closeOwned(c *dspy.Client, owned bool) error {
	if !owned {
		return nil
	}
	return c.Adapter().Close()
}
