package remaining

import (
	"context"

	. "github.com/mlbridge/mlbridge/adapters" // want "package adapters is deprecated"
)

// Dot-imported names are legacy uses too: renames are rewritten, the rest reported.
func Dotted(ctx context.Context) (LMConfig, error) { // want "adapters.LMConfig is deprecated: use dspy.LMConfig"
	_, err := NewPythonPoolV2(ctx, Options{}) // want "adapters.NewPythonPoolV2 is deprecated" "adapters.Options is deprecated"
	return LMConfig{}, err                    // want "adapters.LMConfig is deprecated"
}
