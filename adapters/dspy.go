// Package adapters is the DSPy-specific API that existing users call: PythonPort (one Python
// process) and PythonPoolV2 (a pool), with CreateProgram, ExecuteProgram and friends.
//
// Both are thin wrappers over the multi-framework API — an mlbridge.Pool (an Adapter) and
// the dspy package's Client — with no second implementation: a program created here is a
// definition in the pool's store, which any worker can build and the new API can run.
package adapters

import (
	"context"
	"log/slog"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/dspy"
	"github.com/mlbridge/mlbridge/store"
)

// DSPyBridge is the Python bridge class the adapters run.
const DSPyBridge = dspy.Bridge

// Options configures a PythonPort or PythonPoolV2.
type Options struct {
	// Workers is the pool size (PythonPoolV2; PythonPort always has one).
	Workers int
	// Python is the interpreter (default: discovery, see mlbridge.Config).
	Python string
	// EnvAllow names host variables the workers may see (e.g. an API key's variable).
	EnvAllow []string
	// Store keeps program definitions (default: in memory); use store.OpenBolt to keep them
	// across restarts.
	Store  store.Store
	Logger *slog.Logger

	// Adapter, when set, is an adapter of the multi-framework API running the DSPy bridge
	// (a Registry's "dspy" entry): the legacy API then runs on it — the same workers and the
	// same programs — instead of starting its own pool, and Close leaves it running. The
	// other options are ignored.
	Adapter mlbridge.Adapter
}

// The legacy names of the dspy package's types.
type (
	ProgramOption = dspy.ProgramOption
	ProgramInfo   = dspy.ProgramInfo
	FieldInfo     = dspy.FieldInfo
	LMConfig      = dspy.LMConfig
)

// WithModule selects the DSPy module: "Predict" (default) or "ChainOfThought".
func WithModule(module string) ProgramOption { return dspy.WithModule(module) }

// WithInstructions sets the signature's instructions.
func WithInstructions(text string) ProgramOption { return dspy.WithInstructions(text) }

// WithFieldDescriptions describes signature fields by name.
func WithFieldDescriptions(desc map[string]string) ProgramOption {
	return dspy.WithFieldDescriptions(desc)
}

// dspyClient is what PythonPort and PythonPoolV2 share: the legacy method set, each method a
// call to the dspy package's Client on the same pool.
type dspyClient struct {
	a      mlbridge.Adapter
	client *dspy.Client
	owned  bool // Close closes a
}

func open(ctx context.Context, o Options, size int) (*dspyClient, error) {
	if o.Adapter != nil {
		return &dspyClient{a: o.Adapter, client: dspy.New(o.Adapter)}, nil
	}
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: DSPyBridge, Python: o.Python, EnvAllow: o.EnvAllow, Logger: o.Logger},
		Size:   size, Store: o.Store, Preload: size > 1,
	})
	if err != nil {
		return nil, err
	}
	return &dspyClient{a: p, client: dspy.New(p), owned: true}, nil
}

func (c *dspyClient) CreateProgram(ctx context.Context, signature string, opts ...ProgramOption) (string, error) {
	return c.client.CreateProgram(ctx, signature, opts...)
}

func (c *dspyClient) ExecuteProgram(ctx context.Context, id string, inputs map[string]any) (map[string]any, error) {
	return c.client.ExecuteProgram(ctx, id, inputs)
}

func (c *dspyClient) GetProgramInfo(ctx context.Context, id string) (ProgramInfo, error) {
	return c.client.GetProgramInfo(ctx, id)
}

func (c *dspyClient) ListPrograms(ctx context.Context) ([]string, error) {
	return c.client.ListPrograms(ctx)
}

func (c *dspyClient) DeleteProgram(ctx context.Context, id string) error {
	return c.client.DeleteProgram(ctx, id)
}

func (c *dspyClient) ConfigureLM(ctx context.Context, cfg LMConfig) error {
	return c.client.ConfigureLM(ctx, cfg)
}

func (c *dspyClient) HealthCheck(ctx context.Context) error { return c.a.Health(ctx) }

func (c *dspyClient) GetStats() mlbridge.PoolStats { return c.a.Stats() }

// Close stops the workers, unless the adapter came from Options.Adapter.
func (c *dspyClient) Close() error {
	if !c.owned {
		return nil
	}
	return c.a.Close()
}

// Adapter is the adapter underneath, for the multi-framework API: the same workers and the
// same program definitions.
func (c *dspyClient) Adapter() mlbridge.Adapter { return c.a }
