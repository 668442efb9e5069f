package adapters

// The legacy method sets. Each method is one call to the multi-framework API through the
// embedded *dspy.Client, marked //go:fix inline so that `go fix ./...` rewrites callers to
// that call. The body reaches the client through a field, not an accessor call: the inliner
// declines a call whose arguments it would have to evaluate after a call in the body.

import (
	"context"

	"github.com/mlbridge/mlbridge"
)

// CreateProgram validates signature, stores the program and builds it once; it returns the program id.
//
// Deprecated: use dspy.Client.CreateProgram on the embedded Client; `go fix` inlines the call.
//
//go:fix inline
func (p *PythonPort) CreateProgram(ctx context.Context, signature string, opts ...ProgramOption) (string, error) {
	return p.Client.CreateProgram(ctx, signature, opts...)
}

// ExecuteProgram runs program id on inputs.
//
// Deprecated: use dspy.Client.ExecuteProgram on the embedded Client; `go fix` inlines the call.
//
//go:fix inline
func (p *PythonPort) ExecuteProgram(ctx context.Context, id string, inputs map[string]any) (map[string]any, error) {
	return p.Client.ExecuteProgram(ctx, id, inputs)
}

// GetProgramInfo describes program id.
//
// Deprecated: use dspy.Client.GetProgramInfo on the embedded Client; `go fix` inlines the call.
//
//go:fix inline
func (p *PythonPort) GetProgramInfo(ctx context.Context, id string) (ProgramInfo, error) {
	return p.Client.GetProgramInfo(ctx, id)
}

// ListPrograms returns the ids of the stored programs.
//
// Deprecated: use dspy.Client.ListPrograms on the embedded Client; `go fix` inlines the call.
//
//go:fix inline
func (p *PythonPort) ListPrograms(ctx context.Context) ([]string, error) {
	return p.Client.ListPrograms(ctx)
}

// DeleteProgram removes program id.
//
// Deprecated: use dspy.Client.DeleteProgram on the embedded Client; `go fix` inlines the call.
//
//go:fix inline
func (p *PythonPort) DeleteProgram(ctx context.Context, id string) error {
	return p.Client.DeleteProgram(ctx, id)
}

// ConfigureLM sets the LM of every worker, including workers started later.
//
// Deprecated: use dspy.Client.ConfigureLM on the embedded Client; `go fix` inlines the call.
//
//go:fix inline
func (p *PythonPort) ConfigureLM(ctx context.Context, cfg LMConfig) error {
	return p.Client.ConfigureLM(ctx, cfg)
}

// HealthCheck is nil when every worker is ready.
//
// Deprecated: use mlbridge.Adapter.Health (p.Client.Adapter().Health(ctx)); `go fix` inlines the call.
//
//go:fix inline
func (p *PythonPort) HealthCheck(ctx context.Context) error {
	return p.Client.Adapter().Health(ctx)
}

// GetStats returns the pool's statistics.
//
// Deprecated: use mlbridge.Adapter.Stats (p.Client.Adapter().Stats()); `go fix` inlines the call.
//
//go:fix inline
func (p *PythonPort) GetStats() mlbridge.PoolStats {
	return p.Client.Adapter().Stats()
}

// CreateProgram validates signature, stores the program and builds it once; it returns the program id.
//
// Deprecated: use dspy.Client.CreateProgram on the embedded Client; `go fix` inlines the call.
//
//go:fix inline
func (p *PythonPoolV2) CreateProgram(ctx context.Context, signature string, opts ...ProgramOption) (string, error) {
	return p.Client.CreateProgram(ctx, signature, opts...)
}

// ExecuteProgram runs program id on inputs.
//
// Deprecated: use dspy.Client.ExecuteProgram on the embedded Client; `go fix` inlines the call.
//
//go:fix inline
func (p *PythonPoolV2) ExecuteProgram(ctx context.Context, id string, inputs map[string]any) (map[string]any, error) {
	return p.Client.ExecuteProgram(ctx, id, inputs)
}

// GetProgramInfo describes program id.
//
// Deprecated: use dspy.Client.GetProgramInfo on the embedded Client; `go fix` inlines the call.
//
//go:fix inline
func (p *PythonPoolV2) GetProgramInfo(ctx context.Context, id string) (ProgramInfo, error) {
	return p.Client.GetProgramInfo(ctx, id)
}

// ListPrograms returns the ids of the stored programs.
//
// Deprecated: use dspy.Client.ListPrograms on the embedded Client; `go fix` inlines the call.
//
//go:fix inline
func (p *PythonPoolV2) ListPrograms(ctx context.Context) ([]string, error) {
	return p.Client.ListPrograms(ctx)
}

// DeleteProgram removes program id.
//
// Deprecated: use dspy.Client.DeleteProgram on the embedded Client; `go fix` inlines the call.
//
//go:fix inline
func (p *PythonPoolV2) DeleteProgram(ctx context.Context, id string) error {
	return p.Client.DeleteProgram(ctx, id)
}

// ConfigureLM sets the LM of every worker, including workers started later.
//
// Deprecated: use dspy.Client.ConfigureLM on the embedded Client; `go fix` inlines the call.
//
//go:fix inline
func (p *PythonPoolV2) ConfigureLM(ctx context.Context, cfg LMConfig) error {
	return p.Client.ConfigureLM(ctx, cfg)
}

// HealthCheck is nil when every worker is ready.
//
// Deprecated: use mlbridge.Adapter.Health (p.Client.Adapter().Health(ctx)); `go fix` inlines the call.
//
//go:fix inline
func (p *PythonPoolV2) HealthCheck(ctx context.Context) error {
	return p.Client.Adapter().Health(ctx)
}

// GetStats returns the pool's statistics.
//
// Deprecated: use mlbridge.Adapter.Stats (p.Client.Adapter().Stats()); `go fix` inlines the call.
//
//go:fix inline
func (p *PythonPoolV2) GetStats() mlbridge.PoolStats {
	return p.Client.Adapter().Stats()
}
