package teamshapes

import (
	"context"

	dspy "github.com/mlbridge/mlbridge/adapters" // the team named it dspy // want "package adapters is deprecated"
)

// Tagged is generic and embeds the legacy pool.
type Tagged[T comparable] struct {
	*dspy.PythonPoolV2 // want "adapters.PythonPoolV2 is deprecated"
	Tag                T
}

// Ping calls a promoted legacy method from a method of the generic type itself.
func (t *Tagged[T]) Ping(ctx context.Context) error {
	return t.HealthCheck(ctx) // want `adapters\.PythonPoolV2\.HealthCheck is deprecated: call t\.PythonPoolV2\.Client\.Adapter\(\)\.Health$`
}

// Modules is an option table under the import the team named dspy: the package dspy gets
// another name.
var Modules = map[string]dspy.ProgramOption{"cot": dspy.WithModule("ChainOfThought")} // want "adapters.ProgramOption is deprecated" "adapters.WithModule is deprecated"

// Anon embeds the legacy pool in an anonymous struct.
func Anon(ctx context.Context, p *dspy.PythonPoolV2) ([]string, error) { // want "adapters.PythonPoolV2 is deprecated"
	deps := struct{ *dspy.PythonPoolV2 }{p} // want "adapters.PythonPoolV2 is deprecated"
	return deps.ListPrograms(ctx)           // want `adapters\.PythonPoolV2\.ListPrograms is deprecated: call deps\.PythonPoolV2\.Client\.ListPrograms$`
}
