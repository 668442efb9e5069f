package comments

import "github.com/mlbridge/mlbridge/adapters" // want "package adapters is deprecated"

// Qualified holds comments between a legacy qualifier and its name: they stay.
func Qualified() (adapters. /* the option */ ProgramOption, string) { // want "adapters.ProgramOption is deprecated"
	return adapters. /* the default */ WithModule("Predict"), adapters. /* renamed */ DSPyBridge // want "adapters.WithModule is deprecated" "adapters.DSPyBridge is deprecated"
}
