package halfdot

import (
	"github.com/mlbridge/mlbridge/adapters" // want "package adapters is deprecated"
	. "github.com/mlbridge/mlbridge/dspy"
)

// Name names renames only: the legacy import goes, the dot import serves.
func Name(info adapters.ProgramInfo) (string, ProgramOption) { // want "adapters.ProgramInfo is deprecated"
	return adapters. /* kept */ DSPyBridge + info.Module, nil // want "adapters.DSPyBridge is deprecated"
}
