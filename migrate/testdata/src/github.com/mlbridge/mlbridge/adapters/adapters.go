// Package adapters is a stand-in with the names of the real legacy package.
package adapters

import (
	"context"

	"github.com/mlbridge/mlbridge/dspy"
)

type (
	LMConfig      = dspy.LMConfig
	ProgramOption = dspy.ProgramOption
	ProgramInfo   = dspy.ProgramInfo
)

const DSPyBridge = dspy.Bridge

func WithModule(m string) ProgramOption { return dspy.WithModule(m) }

type Options struct{ Workers int }
type PythonPoolV2 struct{ *dspy.Client }

func (p *PythonPoolV2) ExecuteProgram(ctx context.Context, id string, in map[string]any) (map[string]any, error) {
	return p.Client.ExecuteProgram(ctx, id, in)
}
func (p *PythonPoolV2) GetProgramInfo(ctx context.Context, id string) (ProgramInfo, error) {
	return p.Client.GetProgramInfo(ctx, id)
}
func (p *PythonPoolV2) CreateProgram(ctx context.Context, sig string, opts ...ProgramOption) (string, error) {
	return p.Client.CreateProgram(ctx, sig, opts...)
}
func (p *PythonPoolV2) Close() error { return nil }

func NewPythonPoolV2(ctx context.Context, o Options) (*PythonPoolV2, error) { return nil, nil }
func ExecuteProgram(ctx context.Context, id string, in map[string]any) (map[string]any, error) {
	return nil, nil
}
func GetProgramInfo(ctx context.Context, id string) (ProgramInfo, error) { return ProgramInfo{}, nil }
func HealthCheck(ctx context.Context) error                              { return nil }
func GetStats() struct{}                                                 { return struct{}{} }

func (p *PythonPoolV2) ListPrograms(ctx context.Context) ([]string, error) {
	return p.Client.ListPrograms(ctx)
}
func (p *PythonPoolV2) DeleteProgram(ctx context.Context, id string) error {
	return p.Client.DeleteProgram(ctx, id)
}
func (p *PythonPoolV2) ConfigureLM(ctx context.Context, cfg LMConfig) error {
	return p.Client.ConfigureLM(ctx, cfg)
}
func (p *PythonPoolV2) HealthCheck(ctx context.Context) error { return p.Client.Adapter().Health(ctx) }
func (p *PythonPoolV2) GetStats() dspy.Stats                  { return p.Client.Adapter().Stats() }

type PythonPort struct{ *dspy.Client }

func (p *PythonPort) GetProgramInfo(ctx context.Context, id string) (ProgramInfo, error) {
	return p.Client.GetProgramInfo(ctx, id)
}
func (p *PythonPort) ListPrograms(ctx context.Context) ([]string, error) {
	return p.Client.ListPrograms(ctx)
}
func (p *PythonPort) DeleteProgram(ctx context.Context, id string) error {
	return p.Client.DeleteProgram(ctx, id)
}
