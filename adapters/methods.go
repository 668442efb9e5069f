package adapters

// The legacy method sets. Each method is one call to the multi-framework API through the
// embedded *dspy.Client. None is marked //go:fix inline: go fix (Go 1.26) declines every call
// whose arguments contain a function call (p.CreateProgram(ctx, sig, adapters.WithModule("X"))),
// inlining GetStats adds an import of package mlbridge the file does not use, and a conflict
// with another fix in the file (map[string]interface{} → any) makes it write nothing for the
// file. `mlbridge migrate` rewrites every call p.X(…) to p.Client.X(…) instead, replacing only
// the selector (TestGoFixThenMigrateEveryCallShape).

import (
	"context"

	"github.com/mlbridge/mlbridge"
)

// CreateProgram validates signature, stores the program and builds it once; it returns the program id.
//
// Deprecated: use dspy.Client.CreateProgram on the embedded Client: `mlbridge migrate` replaces the call with p.Client.CreateProgram(…); not marked for `go fix`, whose inliner declines calls with function-call arguments.
func (p *PythonPort) CreateProgram(ctx context.Context, signature string, opts ...ProgramOption) (string, error) {
	return p.Client.CreateProgram(ctx, signature, opts...)
}

// ExecuteProgram runs program id on inputs.
//
// Deprecated: use dspy.Client.ExecuteProgram on the embedded Client: `mlbridge migrate` replaces the call with p.Client.ExecuteProgram(…); not marked for `go fix`, whose inliner declines calls with function-call arguments.
func (p *PythonPort) ExecuteProgram(ctx context.Context, id string, inputs map[string]any) (map[string]any, error) {
	return p.Client.ExecuteProgram(ctx, id, inputs)
}

// GetProgramInfo describes program id.
//
// Deprecated: use dspy.Client.GetProgramInfo on the embedded Client: `mlbridge migrate` replaces the call with p.Client.GetProgramInfo(…); not marked for `go fix`, whose inliner declines calls with function-call arguments.
func (p *PythonPort) GetProgramInfo(ctx context.Context, id string) (ProgramInfo, error) {
	return p.Client.GetProgramInfo(ctx, id)
}

// ListPrograms returns the ids of the stored programs.
//
// Deprecated: use dspy.Client.ListPrograms on the embedded Client: `mlbridge migrate` replaces the call with p.Client.ListPrograms(…); not marked for `go fix`, whose inliner declines calls with function-call arguments.
func (p *PythonPort) ListPrograms(ctx context.Context) ([]string, error) {
	return p.Client.ListPrograms(ctx)
}

// DeleteProgram removes program id.
//
// Deprecated: use dspy.Client.DeleteProgram on the embedded Client: `mlbridge migrate` replaces the call with p.Client.DeleteProgram(…); not marked for `go fix`, whose inliner declines calls with function-call arguments.
func (p *PythonPort) DeleteProgram(ctx context.Context, id string) error {
	return p.Client.DeleteProgram(ctx, id)
}

// ConfigureLM sets the LM of every worker, including workers started later.
//
// Deprecated: use dspy.Client.ConfigureLM on the embedded Client: `mlbridge migrate` replaces the call with p.Client.ConfigureLM(…); not marked for `go fix`, whose inliner declines calls with function-call arguments.
func (p *PythonPort) ConfigureLM(ctx context.Context, cfg LMConfig) error {
	return p.Client.ConfigureLM(ctx, cfg)
}

// HealthCheck is nil when every worker is ready.
//
// Deprecated: use mlbridge.Adapter.Health: `mlbridge migrate` replaces the call with p.Client.Adapter().Health(ctx); not marked for `go fix`, whose inliner declines calls with function-call arguments.
func (p *PythonPort) HealthCheck(ctx context.Context) error {
	return p.Client.Adapter().Health(ctx)
}

// GetStats returns the pool's statistics.
//
// Deprecated: use mlbridge.Adapter.Stats: `mlbridge migrate` replaces the call with p.Client.Adapter().Stats(); not marked for `go fix`, whose inliner declines calls with function-call arguments and, inlining GetStats, adds an import the file does not use.
func (p *PythonPort) GetStats() mlbridge.PoolStats {
	return p.Client.Adapter().Stats()
}

// CreateProgram validates signature, stores the program and builds it once; it returns the program id.
//
// Deprecated: use dspy.Client.CreateProgram on the embedded Client: `mlbridge migrate` replaces the call with p.Client.CreateProgram(…); not marked for `go fix`, whose inliner declines calls with function-call arguments.
func (p *PythonPoolV2) CreateProgram(ctx context.Context, signature string, opts ...ProgramOption) (string, error) {
	return p.Client.CreateProgram(ctx, signature, opts...)
}

// ExecuteProgram runs program id on inputs.
//
// Deprecated: use dspy.Client.ExecuteProgram on the embedded Client: `mlbridge migrate` replaces the call with p.Client.ExecuteProgram(…); not marked for `go fix`, whose inliner declines calls with function-call arguments.
func (p *PythonPoolV2) ExecuteProgram(ctx context.Context, id string, inputs map[string]any) (map[string]any, error) {
	return p.Client.ExecuteProgram(ctx, id, inputs)
}

// GetProgramInfo describes program id.
//
// Deprecated: use dspy.Client.GetProgramInfo on the embedded Client: `mlbridge migrate` replaces the call with p.Client.GetProgramInfo(…); not marked for `go fix`, whose inliner declines calls with function-call arguments.
func (p *PythonPoolV2) GetProgramInfo(ctx context.Context, id string) (ProgramInfo, error) {
	return p.Client.GetProgramInfo(ctx, id)
}

// ListPrograms returns the ids of the stored programs.
//
// Deprecated: use dspy.Client.ListPrograms on the embedded Client: `mlbridge migrate` replaces the call with p.Client.ListPrograms(…); not marked for `go fix`, whose inliner declines calls with function-call arguments.
func (p *PythonPoolV2) ListPrograms(ctx context.Context) ([]string, error) {
	return p.Client.ListPrograms(ctx)
}

// DeleteProgram removes program id.
//
// Deprecated: use dspy.Client.DeleteProgram on the embedded Client: `mlbridge migrate` replaces the call with p.Client.DeleteProgram(…); not marked for `go fix`, whose inliner declines calls with function-call arguments.
func (p *PythonPoolV2) DeleteProgram(ctx context.Context, id string) error {
	return p.Client.DeleteProgram(ctx, id)
}

// ConfigureLM sets the LM of every worker, including workers started later.
//
// Deprecated: use dspy.Client.ConfigureLM on the embedded Client: `mlbridge migrate` replaces the call with p.Client.ConfigureLM(…); not marked for `go fix`, whose inliner declines calls with function-call arguments.
func (p *PythonPoolV2) ConfigureLM(ctx context.Context, cfg LMConfig) error {
	return p.Client.ConfigureLM(ctx, cfg)
}

// HealthCheck is nil when every worker is ready.
//
// Deprecated: use mlbridge.Adapter.Health: `mlbridge migrate` replaces the call with p.Client.Adapter().Health(ctx); not marked for `go fix`, whose inliner declines calls with function-call arguments.
func (p *PythonPoolV2) HealthCheck(ctx context.Context) error {
	return p.Client.Adapter().Health(ctx)
}

// GetStats returns the pool's statistics.
//
// Deprecated: use mlbridge.Adapter.Stats: `mlbridge migrate` replaces the call with p.Client.Adapter().Stats(); not marked for `go fix`, whose inliner declines calls with function-call arguments and, inlining GetStats, adds an import the file does not use.
func (p *PythonPoolV2) GetStats() mlbridge.PoolStats {
	return p.Client.Adapter().Stats()
}
