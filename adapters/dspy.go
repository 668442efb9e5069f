// Package adapters is the DSPy-specific API that existing users call: PythonPort (one Python
// process) and PythonPoolV2 (a pool), with CreateProgram, ExecuteProgram and friends.
//
// Both are thin layers over mlbridge.Pool and its host-owned store — there is no second
// implementation: a program created here is a store definition any worker can build.
package adapters

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/store"
)

// DSPyBridge is the Python bridge class the adapters run.
const DSPyBridge = "mlbridge_worker.frameworks.dspy_bridge:DSPyBridge"

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
}

// ProgramOption adjusts CreateProgram.
type ProgramOption func(map[string]any)

// WithModule selects the DSPy module: "Predict" (default) or "ChainOfThought".
func WithModule(module string) ProgramOption { return func(s map[string]any) { s["module"] = module } }

// WithInstructions sets the signature's instructions.
func WithInstructions(text string) ProgramOption {
	return func(s map[string]any) { s["instructions"] = text }
}

// WithFieldDescriptions describes signature fields by name.
func WithFieldDescriptions(desc map[string]string) ProgramOption {
	return func(s map[string]any) {
		m := make(map[string]any, len(desc))
		for k, v := range desc {
			m[k] = v
		}
		s["field_descriptions"] = m
	}
}

// LMConfig selects the language model every worker uses, including workers started later.
type LMConfig struct {
	// Provider is one of:
	//   - "local" (also the zero value): the embedded SmolLM2-135M-Instruct, run in each
	//     worker by llama.cpp — offline, no key; ModelPath, Threads and ContextSize tune it.
	//   - "openai_compatible": any provider DSPy supports, by Model ("openai/..." is assumed
	//     when BaseURL is set and Model has no provider prefix), BaseURL and APIKeyEnv.
	//   - "dummy": DSPy's DummyLM answering Answers in order (tests).
	Provider  string
	Model     string
	BaseURL   string
	APIKeyEnv string // the *name* of the variable holding the key, never the key
	// NumRetries is how often DSPy retries a failed provider call (rate limits, server
	// errors): 0 keeps DSPy's default (3), a negative value turns retries off.
	NumRetries  int
	Temperature float64
	MaxTokens   int
	Answers     []map[string]any

	ModelPath   string // local: a GGUF file instead of the packaged model
	Threads     int    // local: llama.cpp threads per worker (default 1: the pool is the parallelism)
	ContextSize int    // local: context window in tokens (default 2048)

	// Adapter is the DSPy adapter that formats prompts: "json" (default for local: it asks
	// for the signature's JSON schema, which llama.cpp enforces) or "chat" (DSPy's default).
	Adapter string
}

func (c LMConfig) spec() map[string]any {
	provider := c.Provider
	if provider == "" {
		provider = "local"
	}
	s := map[string]any{"provider": provider}
	set := func(k string, v any, ok bool) {
		if ok {
			s[k] = v
		}
	}
	set("model", c.Model, c.Model != "")
	set("base_url", c.BaseURL, c.BaseURL != "")
	set("api_key_env", c.APIKeyEnv, c.APIKeyEnv != "")
	set("temperature", c.Temperature, c.Temperature != 0)
	set("max_tokens", c.MaxTokens, c.MaxTokens != 0)
	set("model_path", c.ModelPath, c.ModelPath != "")
	set("n_threads", c.Threads, c.Threads != 0)
	set("n_ctx", c.ContextSize, c.ContextSize != 0)
	set("adapter", c.Adapter, c.Adapter != "")
	set("num_retries", max(c.NumRetries, 0), c.NumRetries != 0)
	if len(c.Answers) > 0 {
		answers := make([]any, len(c.Answers))
		for i, a := range c.Answers {
			answers[i] = a
		}
		s["answers"] = answers
	}
	return s
}

// ProgramInfo describes a program as a worker built it.
type ProgramInfo struct {
	ID           string      `msgpack:"id"`
	Module       string      `msgpack:"module"`
	Signature    string      `msgpack:"signature"`
	Instructions string      `msgpack:"instructions"`
	Inputs       []FieldInfo `msgpack:"inputs"`
	Outputs      []FieldInfo `msgpack:"outputs"`
}

// FieldInfo is one field of a ProgramInfo.
type FieldInfo struct {
	Name string `msgpack:"name"`
	Type string `msgpack:"type"`
	Desc string `msgpack:"desc"`
}

// dspyClient is what PythonPort and PythonPoolV2 share: the DSPy calls over one pool.
type dspyClient struct {
	pool *mlbridge.Pool
}

func open(ctx context.Context, o Options, size int) (*dspyClient, error) {
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: DSPyBridge, Python: o.Python, EnvAllow: o.EnvAllow, Logger: o.Logger},
		Size:   size, Store: o.Store, Preload: size > 1,
	})
	if err != nil {
		return nil, err
	}
	return &dspyClient{pool: p}, nil
}

func (c *dspyClient) CreateProgram(ctx context.Context, signature string, opts ...ProgramOption) (string, error) {
	sig, err := mlbridge.ParseSignature(signature)
	if err != nil {
		return "", err
	}
	spec := map[string]any{"signature": sig.String()}
	for _, o := range opts {
		o(spec)
	}
	id := newProgramID()
	if _, err := c.pool.Define(ctx, store.Definition{ID: id, Kind: "program", Spec: spec}); err != nil {
		return "", err
	}
	// Build it once now, so that a bad module or description fails here, not on first use.
	if _, err := c.pool.Call(ctx, "get_program_info", map[string]any{"program_id": id}, mlbridge.Uses(id)); err != nil {
		_ = c.pool.Forget(ctx, id)
		return "", err
	}
	return id, nil
}

func (c *dspyClient) ExecuteProgram(ctx context.Context, id string, inputs map[string]any) (map[string]any, error) {
	if err := c.exists(ctx, id); err != nil {
		return nil, err
	}
	return mlbridge.Decode[map[string]any](c.pool.Call(ctx, "execute_program",
		map[string]any{"program_id": id, "inputs": inputs}, mlbridge.Uses(id)))
}

func (c *dspyClient) GetProgramInfo(ctx context.Context, id string) (ProgramInfo, error) {
	if err := c.exists(ctx, id); err != nil {
		return ProgramInfo{}, err
	}
	return mlbridge.Decode[ProgramInfo](c.pool.Call(ctx, "get_program_info", map[string]any{"program_id": id}, mlbridge.Uses(id)))
}

func (c *dspyClient) ListPrograms(ctx context.Context) ([]string, error) {
	defs, err := c.pool.Store().List(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, d := range defs {
		if d.Kind == "program" {
			ids = append(ids, d.ID)
		}
	}
	return ids, nil
}

func (c *dspyClient) DeleteProgram(ctx context.Context, id string) error {
	if err := c.exists(ctx, id); err != nil {
		return err
	}
	return c.pool.Forget(ctx, id)
}

func (c *dspyClient) ConfigureLM(ctx context.Context, cfg LMConfig) error {
	_, err := c.pool.Define(ctx, store.Definition{ID: "lm", Kind: "lm", Global: true, Spec: cfg.spec()})
	return err
}

func (c *dspyClient) HealthCheck(ctx context.Context) error {
	if err := c.pool.Err(); err != nil {
		return err
	}
	if !c.pool.Healthy() {
		return fmt.Errorf("%w: not every worker is ready", mlbridge.ErrUnavailable)
	}
	return nil
}

func (c *dspyClient) GetStats() mlbridge.PoolStats { return c.pool.Stats() }

// Pool is the mlbridge.Pool underneath: the same workers and program definitions, for calls
// the legacy methods do not cover.
func (c *dspyClient) Pool() *mlbridge.Pool { return c.pool }

func (c *dspyClient) Close() error { return c.pool.Close() }

// exists turns an unknown program id into ErrNotFound before any call is made.
func (c *dspyClient) exists(ctx context.Context, id string) error {
	d, err := c.pool.Store().Get(ctx, id)
	if err != nil || d.Kind != "program" {
		return fmt.Errorf("%w: program %q", mlbridge.ErrNotFound, id)
	}
	return nil
}

func newProgramID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "prog_" + time.Now().UTC().Format("20060102") + "_" + hex.EncodeToString(b[:])
}
