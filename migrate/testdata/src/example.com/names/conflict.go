package names

import (
	"example.com/other/dspy"

	"github.com/mlbridge/mlbridge/adapters" // want "package adapters is deprecated and no use is left after the rewrites: import the dspy package instead"
)

// The file already has a package named dspy: this module's dspy comes in as mldspy.
func Tuned(s dspy.Settings) adapters.LMConfig { // want "adapters.LMConfig is deprecated: use dspy.LMConfig"
	_ = s
	return adapters.LMConfig{Provider: "dummy"} // want "adapters.LMConfig is deprecated"
}
