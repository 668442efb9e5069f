package names

import (
	"github.com/mlbridge/mlbridge/adapters" // want "package adapters is deprecated"
	"github.com/mlbridge/mlbridge/dspy"     // added by go fix
)

// go fix already imported dspy for the options; a parameter shadows it where a rename goes:
// the import is renamed with its uses, not imported twice.
func Reconfigure(dspy int) any {
	_ = dspy
	return []adapters.ProgramOption{} // want "adapters.ProgramOption is deprecated"
}

// Options is what go fix left.
func Options() dspy.ProgramOption { return dspy.WithModule("Predict") }
