package comments

import "github.com/mlbridge/mlbridge/adapters" // legacy // want "package adapters is deprecated"

// An import outside a group gets a declaration of its own.
func Default() (adapters.LMConfig, map[string]any, error) { // want "adapters.LMConfig is deprecated"
	out, err := adapters.ExecuteProgram(nil, "id", nil) // want "adapters.ExecuteProgram is deprecated"
	return adapters.LMConfig{}, out, err                // want "adapters.LMConfig is deprecated"
}
