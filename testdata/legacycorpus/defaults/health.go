package defaults

import (
	"context"

	"github.com/mlbridge/mlbridge/adapters"
)

// Workers is the size of the default pool (GetStats returns a type of a package this file does
// not import).
func Workers() int { return adapters.GetStats().Size }

// Healthy reports whether the default pool answers.
func Healthy(ctx context.Context) bool { return adapters.HealthCheck(ctx) == nil }

// Programs counts the default pool's programs.
func Programs(ctx context.Context) (int, error) {
	ids, err := adapters.ListPrograms(ctx)
	return len(ids), err
}

// Module is the module of program id on the default pool.
func Module(ctx context.Context, id string) (string, error) {
	info, err := adapters.GetProgramInfo(ctx, id)
	return info.Module, err
}
