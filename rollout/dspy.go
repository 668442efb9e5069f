package rollout

import (
	"context"

	"github.com/mlbridge/mlbridge/adapters"
	"github.com/mlbridge/mlbridge/dspy"
)

// Programs is "pattern 2: feature-flag migration" for DSPy programs (docs/MIGRATION.md): the
// application calls it instead of the legacy pool, and each call takes the legacy or the new
// path as the flag says for its site. Both paths run on one pool (Options.Adapter), so a
// program created on either path runs on the other, and flipping the flag never loses one.
type Programs struct {
	Switch Switch
	Site   string
	Legacy *adapters.PythonPoolV2
	New    *dspy.Client
}

// ExecuteProgram runs program id on the path the flag selects.
func (p Programs) ExecuteProgram(ctx context.Context, id string, inputs map[string]any) (map[string]any, error) {
	if p.Switch.UseNew(ctx, p.Site) {
		return p.New.ExecuteProgram(ctx, id, inputs)
	}
	//lint:ignore SA1019 this is the legacy path the flag can still select
	return p.Legacy.ExecuteProgram(ctx, id, inputs)
}

// CreateProgram creates a program on the path the flag selects.
func (p Programs) CreateProgram(ctx context.Context, signature string, opts ...dspy.ProgramOption) (string, error) {
	if p.Switch.UseNew(ctx, p.Site) {
		return p.New.CreateProgram(ctx, signature, opts...)
	}
	//lint:ignore SA1019 this is the legacy path the flag can still select
	return p.Legacy.CreateProgram(ctx, signature, opts...)
}
