package app

import (
	"context"

	"github.com/mlbridge/mlbridge/adapters" // want "package adapters is deprecated"
)

// Renames and a constructor: dspy's import is added, the legacy one stays for what remains.
func Start(ctx context.Context) (*adapters.PythonPoolV2, adapters.LMConfig, error) { // want "adapters.PythonPoolV2 is deprecated: use mlbridge.Adapter with dspy.Client" "adapters.LMConfig is deprecated"
	p, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Workers: 2}) // want "adapters.NewPythonPoolV2 is deprecated: use a bridge running dspy.Bridge" "adapters.Options is deprecated"

	return p, adapters.LMConfig{}, err // want "adapters.LMConfig is deprecated"
}

// Package-level functions on the default pool are reported, not rewritten.
func Run(ctx context.Context) (map[string]any, error) {
	return adapters.ExecuteProgram(ctx, "id", nil) // want "adapters.ExecuteProgram is deprecated: use dspy.New\\(a\\).ExecuteProgram, a from mlbridge.Registry.Default"
}

// The package-level functions added later are reported too.
func Check(ctx context.Context) error {
	_ = adapters.GetStats()                                       // want "adapters.GetStats is deprecated: use a.Stats\\(\\), a from mlbridge.Registry.Default \\(Stats is a method of mlbridge.Adapter\\) \\(docs/MIGRATION.md\\)$"
	if _, err := adapters.GetProgramInfo(ctx, "id"); err != nil { // want "adapters.GetProgramInfo is deprecated: use dspy.New\\(a\\).GetProgramInfo"
		return err
	}
	return adapters.HealthCheck(ctx) // want "adapters.HealthCheck is deprecated: use a.Health\\(ctx\\)"
}
