package dspy

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mlbridge/mlbridge"
)

// ExportProgram returns program id's state as DSPy's own JSON: what `program.save("p.json")`
// writes, `program.dump_state()` (demos, instructions, field prefixes) plus the metadata DSPy's
// load requires. A DSPy program of the same module and signature loads it with
// `program.load("p.json")`, and ImportProgram makes it a program here again.
func (c *Client) ExportProgram(ctx context.Context, id string) ([]byte, error) {
	if err := c.exists(ctx, id); err != nil {
		return nil, err
	}
	return mlbridge.Decode[[]byte](c.a.Call(ctx, "export_program", map[string]any{"program_id": id}, mlbridge.Uses(id)))
}

// ImportProgram creates a program, as CreateProgram does, whose state is state: DSPy's JSON
// of a program built from the same signature and module (ExportProgram's, or a file DSPy's
// `save` wrote). The state is loaded when the program is created: one of another module or
// signature, or not DSPy's, fails with mlbridge.ErrInvalidArgument and nothing is stored.
func (c *Client) ImportProgram(ctx context.Context, signature string, state []byte, opts ...ProgramOption) (string, error) {
	if !json.Valid(state) {
		return "", fmt.Errorf("%w: the program state is not JSON", mlbridge.ErrInvalidArgument)
	}
	return c.create(ctx, signature, state, opts)
}
