package adapters

import (
	"context"
	"sync"

	"github.com/mlbridge/mlbridge"
)

// The package-level functions below run on one default PythonPoolV2, the way the original
// module-level calls did. It is started on first use with zero Options (or installed with
// SetDefault) and lives until CloseDefault. This is the only global state in mlbridge.
var (
	defaultMu   sync.Mutex
	defaultPool *PythonPoolV2
)

// SetDefault installs p as the pool behind the package-level functions.
//
// Deprecated: a mlbridge.Registry holds the default bridge (Registry.SetDefault). `mlbridge
// migrate` reports the call; neither it nor `go fix` rewrites it.
func SetDefault(p *PythonPoolV2) {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	defaultPool = p
}

// Default returns the default pool, starting it if needed.
//
// Deprecated: a mlbridge.Registry holds the default bridge (Registry.Default). `mlbridge
// migrate` reports the call; neither it nor `go fix` rewrites it.
func Default(ctx context.Context) (*PythonPoolV2, error) {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	if defaultPool == nil {
		c, owned, err := open(ctx, Options{}, 2, apiDefault)
		if err != nil {
			return nil, err
		}
		p := &PythonPoolV2{Client: c, owned: owned}
		defaultPool = p
	}
	return defaultPool, nil
}

// CloseDefault stops the default pool, if one was started.
//
// Deprecated: a mlbridge.Registry holds the default bridge (Registry.Close). `mlbridge
// migrate` reports the call; neither it nor `go fix` rewrites it.
func CloseDefault() error {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	if defaultPool == nil {
		return nil
	}
	err := defaultPool.Close()
	defaultPool = nil
	return err
}

// CreateProgram is PythonPoolV2.CreateProgram on the default pool.
//
// Deprecated: use dspy.New(a).CreateProgram with a from mlbridge.Registry.Default. `mlbridge
// migrate` reports the call; neither it nor `go fix` rewrites it (not marked for `go fix`:
// the default pool has no one-call replacement).
func CreateProgram(ctx context.Context, signature string, opts ...ProgramOption) (string, error) {
	p, err := Default(ctx)
	if err != nil {
		return "", err
	}
	return p.CreateProgram(ctx, signature, opts...)
}

// ExecuteProgram is PythonPoolV2.ExecuteProgram on the default pool.
//
// Deprecated: use dspy.New(a).ExecuteProgram with a from mlbridge.Registry.Default. `mlbridge
// migrate` reports the call; neither it nor `go fix` rewrites it (not marked for `go fix`:
// the default pool has no one-call replacement).
func ExecuteProgram(ctx context.Context, id string, inputs map[string]any) (map[string]any, error) {
	p, err := Default(ctx)
	if err != nil {
		return nil, err
	}
	return p.ExecuteProgram(ctx, id, inputs)
}

// ListPrograms is PythonPoolV2.ListPrograms on the default pool.
//
// Deprecated: use dspy.New(a).ListPrograms with a from mlbridge.Registry.Default. `mlbridge
// migrate` reports the call; neither it nor `go fix` rewrites it (not marked for `go fix`:
// the default pool has no one-call replacement).
func ListPrograms(ctx context.Context) ([]string, error) {
	p, err := Default(ctx)
	if err != nil {
		return nil, err
	}
	return p.ListPrograms(ctx)
}

// DeleteProgram is PythonPoolV2.DeleteProgram on the default pool.
//
// Deprecated: use dspy.New(a).DeleteProgram with a from mlbridge.Registry.Default. `mlbridge
// migrate` reports the call; neither it nor `go fix` rewrites it (not marked for `go fix`:
// the default pool has no one-call replacement).
func DeleteProgram(ctx context.Context, id string) error {
	p, err := Default(ctx)
	if err != nil {
		return err
	}
	return p.DeleteProgram(ctx, id)
}

// ConfigureLM is PythonPoolV2.ConfigureLM on the default pool.
//
// Deprecated: use dspy.New(a).ConfigureLM with a from mlbridge.Registry.Default. `mlbridge
// migrate` reports the call; neither it nor `go fix` rewrites it (not marked for `go fix`:
// the default pool has no one-call replacement).
func ConfigureLM(ctx context.Context, cfg LMConfig) error {
	p, err := Default(ctx)
	if err != nil {
		return err
	}
	return p.ConfigureLM(ctx, cfg)
}

// GetProgramInfo is PythonPoolV2.GetProgramInfo on the default pool.
//
// Deprecated: use dspy.New(a).GetProgramInfo with a from mlbridge.Registry.Default. `mlbridge
// migrate` reports it; neither it nor `go fix` rewrites it (not marked for `go fix`: the
// default pool has no one-call replacement).
func GetProgramInfo(ctx context.Context, id string) (ProgramInfo, error) {
	p, err := Default(ctx)
	if err != nil {
		return ProgramInfo{}, err
	}
	return p.GetProgramInfo(ctx, id)
}

// HealthCheck is PythonPoolV2.HealthCheck on the default pool, which it starts if needed: nil
// when every worker is ready.
//
// Deprecated: use Health on the adapter from mlbridge.Registry.Default. `mlbridge migrate`
// reports it; neither it nor `go fix` rewrites it (not marked for `go fix`: the default pool
// has no one-call replacement).
func HealthCheck(ctx context.Context) error {
	p, err := Default(ctx)
	if err != nil {
		return err
	}
	return p.HealthCheck(ctx)
}

// GetStats is PythonPoolV2.GetStats on the default pool: the zero PoolStats when the default
// pool has not been started (GetStats does not start it).
//
// Deprecated: use Stats on the adapter from mlbridge.Registry.Default. `mlbridge migrate`
// reports it; neither it nor `go fix` rewrites it (not marked for `go fix`: the default pool
// has no one-call replacement).
func GetStats() mlbridge.PoolStats {
	defaultMu.Lock()
	p := defaultPool
	defaultMu.Unlock()
	if p == nil {
		return mlbridge.PoolStats{}
	}
	return p.GetStats()
}
