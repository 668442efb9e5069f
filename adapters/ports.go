package adapters

import "context"

// PythonPort runs DSPy programs in one Python process.
type PythonPort struct{ *dspyClient }

// NewPythonPort starts one DSPy worker.
func NewPythonPort(ctx context.Context, o Options) (*PythonPort, error) {
	c, err := open(ctx, o, 1)
	if err != nil {
		return nil, err
	}
	return &PythonPort{c}, nil
}

// PythonPoolV2 runs DSPy programs on a pool of Python workers (default 2), forked from one
// preloaded interpreter so that DSPy is imported once.
type PythonPoolV2 struct{ *dspyClient }

// NewPythonPoolV2 starts the pool.
func NewPythonPoolV2(ctx context.Context, o Options) (*PythonPoolV2, error) {
	size := o.Workers
	if size <= 0 {
		size = 2
	}
	c, err := open(ctx, o, size)
	if err != nil {
		return nil, err
	}
	return &PythonPoolV2{c}, nil
}
