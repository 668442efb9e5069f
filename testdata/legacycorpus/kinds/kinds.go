// Package kinds uses the legacy types the ways a codebase does besides calling them: as
// interface members, type-switch cases, struct fields, parameters (one named dspy), method
// values and method expressions, and a single-process PythonPort next to the pool.
package kinds

import (
	"context"
	"errors"
	"fmt"

	"github.com/mlbridge/mlbridge/adapters"
)

// Programs is what this package needs from a DSPy backend. Both legacy types satisfy it, and
// so does the current dspy.Client.
type Programs interface {
	CreateProgram(ctx context.Context, signature string, opts ...adapters.ProgramOption) (string, error)
	ExecuteProgram(ctx context.Context, id string, inputs map[string]any) (map[string]any, error)
	GetProgramInfo(ctx context.Context, id string) (adapters.ProgramInfo, error)
	ConfigureLM(ctx context.Context, cfg adapters.LMConfig) error
}

// Kind names the implementation behind p.
func Kind(p Programs) string {
	switch p.(type) {
	case *adapters.PythonPoolV2:
		return "pool"
	case *adapters.PythonPort:
		return "port"
	case nil:
		return "none"
	default:
		return fmt.Sprintf("%T", p)
	}
}

// Runner keeps a program's calls as function values, the way a job queue stores them.
type Runner struct {
	Pool *adapters.PythonPoolV2
	run  func(context.Context, string, map[string]any) (map[string]any, error)
	info func(*adapters.PythonPoolV2, context.Context, string) (adapters.ProgramInfo, error)
}

// NewRunner binds pool's methods.
func NewRunner(pool *adapters.PythonPoolV2) *Runner {
	return &Runner{Pool: pool, run: pool.ExecuteProgram, info: (*adapters.PythonPoolV2).GetProgramInfo}
}

// Run runs program id and returns its answer with the program's module.
func (r *Runner) Run(ctx context.Context, id string, inputs map[string]any) (string, error) {
	out, err := r.run(ctx, id, inputs)
	if err != nil {
		return "", err
	}
	info, err := r.info(r.Pool, ctx, id)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%v (%s, %s)", out["answer"], info.Module, info.Signature), nil
}

// Configure sets the LM; its parameter shares its name with mlbridge's dspy package.
func Configure(ctx context.Context, dspy Programs, answers []map[string]any) error {
	cfg := adapters.LMConfig{Provider: "dummy", Answers: answers}
	return dspy.ConfigureLM(ctx, cfg)
}

// Describe returns each field of program id with its type, inputs first.
func Describe(ctx context.Context, dspy *adapters.PythonPort, id string) ([]string, error) {
	info, err := dspy.GetProgramInfo(ctx, id)
	if err != nil {
		return nil, err
	}
	var fields []string
	for _, f := range append(append([]adapters.FieldInfo{}, info.Inputs...), info.Outputs...) {
		fields = append(fields, f.Name+":"+f.Type)
	}
	return fields, nil
}

// Counting is a pool that counts its executions: it overrides ExecuteProgram and inherits
// the other methods, so it is a Programs too.
type Counting struct {
	*adapters.PythonPoolV2
	Runs int
}

// ExecuteProgram counts the run and runs it on the pool.
func (c *Counting) ExecuteProgram(ctx context.Context, id string, inputs map[string]any) (map[string]any, error) {
	c.Runs++
	return c.PythonPoolV2.ExecuteProgram(ctx, id, inputs)
}

// ErrNoBackend is returned when no backend is given.
var ErrNoBackend = errors.New("kinds: no backend")

// Create creates a program on p with the options opts names: "cot" selects ChainOfThought,
// any other word is taken as instructions.
func Create(ctx context.Context, p Programs, signature string, opts ...string) (string, error) {
	if p == nil {
		return "", ErrNoBackend
	}
	var options []adapters.ProgramOption
	for _, o := range opts {
		switch o {
		case "cot":
			options = append(options, adapters.WithModule("ChainOfThought"))
		default:
			options = append(options, adapters.WithInstructions(o))
		}
	}
	return p.CreateProgram(ctx, signature, options...)
}
