package names

import (
	"example.com/other/dspy"

	"github.com/mlbridge/mlbridge/adapters"
)

// The file already has a package named dspy: this module's dspy comes in as mldspy.
func Tuned(s dspy.Settings) adapters.LMConfig { // want "adapters.LMConfig is deprecated: use dspy.LMConfig"
	_ = s
	return adapters.LMConfig{Provider: "dummy"} // want "adapters.LMConfig is deprecated"
}
