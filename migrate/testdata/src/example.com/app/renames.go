package app

import (
	"github.com/mlbridge/mlbridge/adapters" // want "package adapters is deprecated and no use is left after the rewrites: import the dspy package instead"
)

// Only renames: the legacy import itself becomes dspy's.
func Config() (adapters.LMConfig, []adapters.ProgramOption, string) { // want "adapters.LMConfig is deprecated: use dspy.LMConfig" "adapters.ProgramOption is deprecated: use dspy.ProgramOption"
	return adapters.LMConfig{Provider: "dummy"}, []adapters.ProgramOption{adapters.WithModule("ChainOfThought")}, adapters.DSPyBridge // want "adapters.LMConfig is deprecated" "adapters.ProgramOption is deprecated" "adapters.WithModule is deprecated" "adapters.DSPyBridge is deprecated: use dspy.Bridge"
}
