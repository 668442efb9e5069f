package comments

import (
	"context"

	"github.com/mlbridge/mlbridge/adapters" // legacy: until the registry lands // want "package adapters is deprecated"
)

// A trailing comment stays on its import line; comments inside arguments stay.
func Start(ctx context.Context) (*adapters.PythonPoolV2, error) { // want "adapters.PythonPoolV2 is deprecated"
	opts := []adapters.ProgramOption{ // want "adapters.ProgramOption is deprecated"
		adapters.WithModule( /* chain */ "ChainOfThought"), // want "adapters.WithModule is deprecated"
	}
	_ = opts
	return adapters.NewPythonPoolV2(ctx, adapters.Options{ /* two */ Workers: 2}) // want "adapters.NewPythonPoolV2 is deprecated" "adapters.Options is deprecated"
}
