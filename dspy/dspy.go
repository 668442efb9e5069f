// Package dspy is the typed DSPy client of the multi-framework API: programs and the LM of a
// DSPy bridge, over any mlbridge.Adapter (a Registry's "dspy" entry, or a Pool).
//
// It holds no state of its own: programs are definitions in the adapter's store, so the
// legacy adapters.PythonPoolV2 and this client, on the same pool, see the same programs.
package dspy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/store"
)

// Bridge is the Python bridge class DSPy adapters run.
const Bridge = "mlbridge_worker.frameworks.dspy_bridge:DSPyBridge"

// Client runs DSPy programs on an adapter.
type Client struct{ a mlbridge.Adapter }

// New returns a client for a, which must run the DSPy bridge.
func New(a mlbridge.Adapter) *Client { return &Client{a: a} }

// Adapter is the adapter underneath.
func (c *Client) Adapter() mlbridge.Adapter { return c.a }

// ProgramOption adjusts CreateProgram.
type ProgramOption func(map[string]any)

// WithModule selects the DSPy module: "Predict" (default), "ChainOfThought",
// "MultiChainComparison", "BestOfN" or "Refine"; see modules.go for the options each needs.
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

// WithID gives the program the id id instead of a generated one. The id must be 1 to 128
// letters, digits, '.', '_' or '-', must not be "lm" (the LM's definition) and must not be in
// use: CreateProgram fails with an error matching mlbridge.ErrInvalidArgument otherwise. Of
// callers creating the same new id at the same moment exactly one succeeds (the store checks
// the id in the same step as the write).
func WithID(id string) ProgramOption { return func(s map[string]any) { s[idKey] = id } }

// idKey carries WithID's id through the spec map; CreateProgram takes it out before storing.
const idKey = "id"

// validID is the charset of a caller's program id.
var validID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// ProgramInfo describes a program as a worker built it.
type ProgramInfo struct {
	ID     string `msgpack:"id"`
	Module string `msgpack:"module"`
	// Signature is the signature in DSPy's notation, with every field's type except str (the
	// default): "question -> answer, confidence: float". ParsedSignature adds the descriptions.
	Signature    string      `msgpack:"signature"`
	Instructions string      `msgpack:"instructions"`
	Inputs       []FieldInfo `msgpack:"inputs"`
	Outputs      []FieldInfo `msgpack:"outputs"`
	// Demos counts the few-shot demos of all the program's predictors: 0 until an optimizer
	// (or an imported state) gives it some.
	Demos int `msgpack:"demos"`
}

// FieldInfo is one field of a ProgramInfo.
type FieldInfo struct {
	Name string `msgpack:"name"`
	Type string `msgpack:"type"`
	Desc string `msgpack:"desc"`
}

// ParsedSignature is the program's signature with each field's type and description, and
// the instructions.
func (i ProgramInfo) ParsedSignature() mlbridge.Signature {
	fields := func(fs []FieldInfo) []mlbridge.Field {
		out := make([]mlbridge.Field, len(fs))
		for k, f := range fs {
			out[k] = mlbridge.Field{Name: f.Name, Type: f.Type, Desc: f.Desc}
		}
		return out
	}
	return mlbridge.Signature{Inputs: fields(i.Inputs), Outputs: fields(i.Outputs), Instructions: i.Instructions}
}

// CreateProgram validates signature in Go (a bad one never reaches Python), stores the
// program's definition and builds it once on a worker, so that a bad module fails here.
// The id is generated unless WithID chooses it.
func (c *Client) CreateProgram(ctx context.Context, signature string, opts ...ProgramOption) (_ string, err error) {
	ctx, end := mlbridge.TraceOperation(ctx, c.a, "dspy.CreateProgram")
	defer func() { end(err) }()
	return c.create(ctx, signature, nil, opts)
}

// create stores a program definition, with state (DSPy's dump_state JSON) when imported.
func (c *Client) create(ctx context.Context, signature string, state []byte, opts []ProgramOption) (string, error) {
	sig, err := mlbridge.ParseSignature(signature)
	if err != nil {
		return "", err
	}
	spec := map[string]any{"signature": sig.String()}
	for _, o := range opts {
		o(spec)
	}
	if err := checkModule(sig, spec); err != nil {
		return "", err
	}
	d := store.Definition{ID: newProgramID(), Kind: "program", Spec: spec, State: state}
	if v, ok := spec[idKey]; ok {
		delete(spec, idKey)
		if d.ID, err = c.chosenID(ctx, v); err != nil {
			return "", err
		}
		d.IfAbsent = true // the check above is early and clear; this one is atomic
	}
	stored, err := c.a.Create(ctx, d)
	if errors.Is(err, store.ErrExists) {
		return "", fmt.Errorf("%w: program id %q is already in use", mlbridge.ErrInvalidArgument, d.ID)
	}
	if err != nil {
		return "", err
	}
	return stored.ID, nil
}

// ExecuteProgram runs program id on inputs and returns its output fields.
func (c *Client) ExecuteProgram(ctx context.Context, id string, inputs map[string]any) (map[string]any, error) {
	ctx, end := mlbridge.TraceOperation(ctx, c.a, "dspy.ExecuteProgram")
	out, err := mlbridge.Decode[map[string]any](c.a.Execute(ctx, id, inputs))
	end(err)
	return out, err
}

// GetProgramInfo describes program id.
func (c *Client) GetProgramInfo(ctx context.Context, id string) (_ ProgramInfo, err error) {
	ctx, end := mlbridge.TraceOperation(ctx, c.a, "dspy.GetProgramInfo")
	defer func() { end(err) }()
	if err := c.exists(ctx, id); err != nil {
		return ProgramInfo{}, err
	}
	return mlbridge.Decode[ProgramInfo](c.a.Call(ctx, "get_program_info", map[string]any{"program_id": id}, mlbridge.Uses(id)))
}

// ListPrograms returns the ids of the stored programs.
func (c *Client) ListPrograms(ctx context.Context) ([]string, error) {
	defs, err := c.a.List(ctx, "program")
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(defs))
	for _, d := range defs {
		ids = append(ids, d.ID)
	}
	return ids, nil
}

// DeleteProgram removes program id.
func (c *Client) DeleteProgram(ctx context.Context, id string) (err error) {
	ctx, end := mlbridge.TraceOperation(ctx, c.a, "dspy.DeleteProgram")
	defer func() { end(err) }()
	if err := c.exists(ctx, id); err != nil {
		return err
	}
	return c.a.Delete(ctx, id)
}

// ConfigureLM sets the LM of every worker, including workers started later. A configuration
// the workers refuse is not kept: the previous one stays in force.
func (c *Client) ConfigureLM(ctx context.Context, cfg LMConfig) error {
	ctx, end := mlbridge.TraceOperation(ctx, c.a, "dspy.ConfigureLM")
	_, err := c.a.Create(ctx, store.Definition{ID: "lm", Kind: "lm", Global: true, Spec: cfg.spec()})
	end(err)
	return err
}

// chosenID checks a WithID id: its charset, and that no definition has it.
func (c *Client) chosenID(ctx context.Context, v any) (string, error) {
	id, _ := v.(string)
	if !validID.MatchString(id) {
		return "", fmt.Errorf("%w: program id %q: want 1 to 128 letters, digits, '.', '_' or '-'", mlbridge.ErrInvalidArgument, id)
	}
	if id == "lm" {
		return "", fmt.Errorf("%w: program id %q is the LM's definition", mlbridge.ErrInvalidArgument, id)
	}
	_, err := c.a.Get(ctx, id)
	switch {
	case err == nil:
		return "", fmt.Errorf("%w: program id %q is already in use", mlbridge.ErrInvalidArgument, id)
	case !errors.Is(err, mlbridge.ErrNotFound) && !errors.Is(err, store.ErrNotFound):
		return "", err
	}
	return id, nil
}

// exists turns an id that is not a stored program into ErrNotFound before any call is made.
func (c *Client) exists(ctx context.Context, id string) error {
	d, err := c.a.Get(ctx, id)
	if err != nil && !errors.Is(err, mlbridge.ErrNotFound) {
		return err // a store that cannot be read now (ErrUnavailable) is not a missing program
	}
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
