package names

import (
	"context"

	"github.com/mlbridge/mlbridge/adapters" // legacy: the constructor stays // want "package adapters is deprecated"
	"github.com/mlbridge/mlbridge/dspy"
)

// The file imports dspy already, but a parameter shadows it at one site.
func Pool(ctx context.Context, dspy int) (*adapters.PythonPoolV2, error) { // want "adapters.PythonPoolV2 is deprecated"
	_ = []adapters.ProgramOption{adapters.WithModule( /* the module */ "Predict")} // want "adapters.ProgramOption is deprecated" "adapters.WithModule is deprecated"
	return adapters.NewPythonPoolV2(ctx, adapters.Options{Workers: dspy})          // want "adapters.NewPythonPoolV2 is deprecated" "adapters.Options is deprecated"
}

var _ dspy.FieldInfo
