package extest

import (
	"testing"

	"github.com/mlbridge/mlbridge/adapters"
)

// An internal test file of a package with its own dspy: the legacy import becomes mldspy.
func TestInfo(t *testing.T) {
	_ = adapters.ProgramInfo{} // want "adapters.ProgramInfo is deprecated"
}
