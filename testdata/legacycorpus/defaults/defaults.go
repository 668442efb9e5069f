// Package defaults runs on the package-level default pool of the legacy API: the module-level
// calls the original Python library had.
package defaults

import (
	"context"

	"github.com/mlbridge/mlbridge/adapters"
)

// Setup installs a pool of one worker as the default and configures its LM.
func Setup(ctx context.Context, python string, answers []map[string]any) error {
	pool, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Workers: 1, Python: python})
	if err != nil {
		return err
	}
	adapters.SetDefault(pool)
	return adapters.ConfigureLM(ctx, adapters.LMConfig{Provider: "dummy", Answers: answers})
}

// Ask creates a program on the default pool and runs it once.
func Ask(ctx context.Context, question string) (string, error) {
	id, err := adapters.CreateProgram(ctx, "question -> answer", adapters.WithID("defaults-"+question))
	if err != nil {
		return "", err
	}
	defer adapters.DeleteProgram(ctx, id)
	out, err := adapters.ExecuteProgram(ctx, id, map[string]interface{}{"question": question})
	if err != nil {
		return "", err
	}
	return out["answer"].(string), nil
}

// Teardown stops the default pool.
func Teardown() error { return adapters.CloseDefault() }
