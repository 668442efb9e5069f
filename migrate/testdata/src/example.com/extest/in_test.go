package extest

import (
	"testing"

	"github.com/mlbridge/mlbridge/adapters" // want "package adapters is deprecated and no use is left after the rewrites: import the dspy package instead"
)

// An internal test file of a package with its own dspy: the legacy import becomes mldspy.
func TestInfo(t *testing.T) {
	_ = adapters.ProgramInfo{} // want "adapters.ProgramInfo is deprecated"
}
