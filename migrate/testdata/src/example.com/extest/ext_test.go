package extest_test

import (
	"testing"

	"github.com/mlbridge/mlbridge/adapters" // want "package adapters is deprecated"
	"github.com/mlbridge/mlbridge/dspy"
)

// An external test package that already imports dspy: no second import.
func TestConfig(t *testing.T) {
	var _ dspy.FieldInfo
	_ = adapters.LMConfig{} // want "adapters.LMConfig is deprecated"
	_ = adapters.Options{}  // want "adapters.Options is deprecated"
}
