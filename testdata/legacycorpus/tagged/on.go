//go:build legacyextra

package tagged

import (
	"context"

	"github.com/mlbridge/mlbridge/adapters"
)

const enabled = true

// classify labels text on a pool of its own.
func classify(ctx context.Context, python, text string) (string, error) {
	pool, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Workers: 1, Python: python})
	if err != nil {
		return "", err
	}
	defer pool.Close()
	if err := pool.ConfigureLM(ctx, adapters.LMConfig{Provider: "dummy", Answers: []map[string]any{{"label": "positive"}}}); err != nil {
		return "", err
	}
	id, err := pool.CreateProgram(ctx, "text -> label", adapters.WithInstructions("positive or negative"))
	if err != nil {
		return "", err
	}
	out, err := pool.ExecuteProgram(ctx, id, map[string]any{"text": text})
	if err != nil {
		return "", err
	}
	return out["label"].(string), nil
}
