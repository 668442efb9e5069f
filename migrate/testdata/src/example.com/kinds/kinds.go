package kinds

import (
	"context"

	"github.com/mlbridge/mlbridge/adapters" // want "package adapters is deprecated"
)

// Programs names the legacy aliases in its members: renamed; its methods are not legacy
// objects, so calls through it stay.
type Programs interface {
	CreateProgram(ctx context.Context, sig string, opts ...adapters.ProgramOption) (string, error) // want "adapters.ProgramOption is deprecated"
	GetProgramInfo(ctx context.Context, id string) (adapters.ProgramInfo, error)                   // want "adapters.ProgramInfo is deprecated"
}

// Kind's type-switch cases are reported: a person decides what replaces them.
func Kind(p Programs) string {
	switch p.(type) {
	case *adapters.PythonPoolV2: // want "adapters.PythonPoolV2 is deprecated"
		return "pool"
	case *adapters.PythonPort: // want "adapters.PythonPort is deprecated"
		return "port"
	}
	return "other"
}

// Counting overrides one legacy method: its own method is not rewritten, the call it makes
// to the embedded pool is.
type Counting struct {
	*adapters.PythonPoolV2 // want "adapters.PythonPoolV2 is deprecated"
	Runs                   int
}

func (c *Counting) ExecuteProgram(ctx context.Context, id string, in map[string]any) (map[string]any, error) {
	c.Runs++
	return c.PythonPoolV2.ExecuteProgram(ctx, id, in) // want `adapters\.PythonPoolV2\.ExecuteProgram is deprecated: call c\.PythonPoolV2\.Client\.ExecuteProgram$`
}

// Create builds options in a loop and calls through the interface: the options are renamed,
// the call stays.
func Create(ctx context.Context, p Programs, words []string) (string, error) {
	var opts []adapters.ProgramOption // want "adapters.ProgramOption is deprecated"
	for _, w := range words {
		opts = append(opts, adapters.WithModule(w)) // want "adapters.WithModule is deprecated"
	}
	c := &Counting{}
	_, _ = c.ExecuteProgram(ctx, "id", nil)
	return p.CreateProgram(ctx, "q -> a", opts...)
}
