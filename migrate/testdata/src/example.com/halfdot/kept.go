package halfdot

import (
	"github.com/mlbridge/mlbridge/adapters" // want "package adapters is deprecated"
	. "github.com/mlbridge/mlbridge/dspy"
)

// Configure is half migrated: it dot-imports package dspy, whose bare names the renames use
// instead of a second import of dspy.
func Configure(p *adapters.PythonPoolV2) (LMConfig, adapters.ProgramOption) { // want "adapters.PythonPoolV2 is deprecated" "adapters.ProgramOption is deprecated"
	return adapters.LMConfig{Provider: "dummy"}, WithModule("Predict") // want "adapters.LMConfig is deprecated"
}
