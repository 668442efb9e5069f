// Package dspy is a stand-in with the names of the real package, for the analyzer's tests.
package dspy

import "context"

type LMConfig struct{ Provider string }
type ProgramOption func(map[string]any)
type ProgramInfo struct{ Module string }
type FieldInfo struct{ Name string }

const Bridge = "mlbridge_worker.frameworks.dspy_bridge:DSPyBridge"

func WithModule(m string) ProgramOption { return nil }

type Client struct{}

func (c *Client) ExecuteProgram(ctx context.Context, id string, in map[string]any) (map[string]any, error) {
	return nil, nil
}
func (c *Client) GetProgramInfo(ctx context.Context, id string) (ProgramInfo, error) {
	return ProgramInfo{}, nil
}
func (c *Client) CreateProgram(ctx context.Context, sig string, opts ...ProgramOption) (string, error) {
	return "", nil
}

func (c *Client) ListPrograms(ctx context.Context) ([]string, error)  { return nil, nil }
func (c *Client) DeleteProgram(ctx context.Context, id string) error  { return nil }
func (c *Client) ConfigureLM(ctx context.Context, cfg LMConfig) error { return nil }
func (c *Client) Adapter() Adapter                                    { return nil }

// Adapter stands in for mlbridge.Adapter.
type Adapter interface {
	Health(ctx context.Context) error
	Stats() Stats
}

// Stats stands in for mlbridge.PoolStats.
type Stats struct{ Workers []string }
