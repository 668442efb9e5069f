package mlbridge

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge/internal/worker"
)

// HostFunc is a Go function Python handlers may call (docs/CALLBACKS.md): host.call(name,
// args) in an async handler, host.call_sync in a sync one. Make one with Func and register
// it in Config.HostFuncs (a pool's, a bridge's, or RegistryOptions.HostFuncs).
type HostFunc struct {
	name   string
	desc   string
	schema map[string]any
	params string // the arguments in short, for errors: "(city: string, units?: string)"
	call   func(ctx context.Context, args msgpack.RawMessage) (any, error)
}

// FuncOption adjusts a HostFunc.
type FuncOption func(*HostFunc)

// Describe sets the description Python sees (a tool's description for an agent).
func Describe(description string) FuncOption { return func(f *HostFunc) { f.desc = description } }

// WithSchema replaces the argument schema derived from In: for a function whose In is a map,
// any or msgpack.RawMessage (one that forwards its arguments elsewhere, as mlnats.Forward's
// do) but whose callers should see the real shape.
func WithSchema(schema map[string]any) FuncOption {
	return func(f *HostFunc) {
		f.schema = schema
		f.params = paramsOf(schema)
	}
}

// Func makes fn callable from Python as name. Python's arguments (a map) decode into In the
// way results decode (`msgpack` tag, then `json` tag, then field name); a name In lacks, a
// required one missing (see below) or a value of the wrong type fails the call with
// invalid_argument before fn runs. Out goes back
// as fn returns it. fn's ctx is the Python request's: its deadline, its cancellation (a
// cancelled call cancels ctx) and its span; an error from fn that wraps an mlbridge sentinel
// (ErrNotFound, ErrInvalidArgument, ...) reaches Python as an exception of that category.
//
// The argument schema Python sees (a JSON Schema object) is derived from In's fields; a
// `desc` tag describes a field, `omitempty` (or a pointer) makes it optional.
func Func[In, Out any](name string, fn func(ctx context.Context, in In) (Out, error), opts ...FuncOption) HostFunc {
	f := &HostFunc{name: name, schema: schemaOf[In]()}
	f.params = paramsOf(f.schema)
	required := requiredOf(f.schema)
	f.call = func(ctx context.Context, raw msgpack.RawMessage) (res any, err error) {
		// A host function runs on a goroutine of its own: a panic there would end the whole
		// host process, every pool and caller with it. It is that call's error instead.
		defer func() {
			if r := recover(); r != nil {
				res, err = nil, fmt.Errorf("%w: host function %q panicked: %v (at %s)", ErrInternal, name, r, panicSite())
			}
		}()
		var in In
		if err := decodeArgs(raw, &in); err != nil {
			return nil, fmt.Errorf("%w: host function %q takes %s: %w", ErrInvalidArgument, name, f.params, err)
		}
		if missing := missingArgs(raw, required); len(missing) > 0 {
			return nil, fmt.Errorf("%w: host function %q takes %s: missing %s", ErrInvalidArgument, name, f.params,
				strings.Join(missing, ", "))
		}
		return fn(ctx, in)
	}
	for _, o := range opts {
		o(f)
	}
	return *f
}

// panicSite is the file:line a recovered panic started at (called from the deferred function):
// the first frame past the runtime's own.
func panicSite() string {
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "runtime.") {
			return fmt.Sprintf("%s:%d", f.File, f.Line)
		}
		if !more {
			return "unknown"
		}
	}
}

// Name is the name Python calls the function by.
func (f HostFunc) Name() string { return f.name }

// Description is the function's description.
func (f HostFunc) Description() string { return f.desc }

// Schema is the JSON Schema of the function's arguments.
func (f HostFunc) Schema() map[string]any { return f.schema }

// Invoke runs the function as a worker's host call would: args is the msgpack map of
// arguments (nil for none). For hosts that serve the function over another transport
// (mlnats.Options.HostFuncs); a worker's calls do not go through it.
func (f HostFunc) Invoke(ctx context.Context, args []byte) (any, error) {
	if f.call == nil {
		return nil, fmt.Errorf("%w: a host function without a name (make them with mlbridge.Func)", ErrInvalidConfiguration)
	}
	return f.call(ctx, args)
}

// decodeArgs decodes a map of arguments into v, refusing names v does not have.
func decodeArgs(raw msgpack.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil // no arguments: In's zero value
	}
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(bytes.NewReader(raw))
	dec.SetCustomStructTag("json")
	dec.DisallowUnknownFields(true)
	return dec.Decode(v)
}

// missingArgs is which of the required argument names the map raw (decoded already, so well
// formed) lacks. The decoder alone would give a missing field its zero value: an agent's call
// without a required argument would run fn on "" or 0 instead of failing like a wrong one.
func missingArgs(raw msgpack.RawMessage, required []string) []string {
	if len(required) == 0 {
		return nil
	}
	if len(raw) == 0 {
		return required
	}
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(bytes.NewReader(raw))
	n, err := dec.DecodeMapLen()
	if err != nil {
		return nil // not a map: decodeArgs has refused it
	}
	seen := 0
	present := make([]bool, len(required))
	for range n {
		key, err := dec.DecodeString()
		if err != nil {
			return nil
		}
		if i := slices.Index(required, key); i >= 0 && !present[i] {
			present[i] = true
			seen++
		}
		if err := dec.Skip(); err != nil {
			return nil
		}
	}
	if seen == len(required) {
		return nil
	}
	var missing []string
	for i, ok := range present {
		if !ok {
			missing = append(missing, required[i])
		}
	}
	return missing
}

// hostFuncTable is what a worker calls: the registered functions by name. Built once per
// pool or bridge; read-only afterwards.
type hostFuncTable struct {
	funcs    map[string]HostFunc
	announce msgpack.RawMessage
}

func newHostFuncTable(funcs []HostFunc) (*hostFuncTable, error) {
	if len(funcs) == 0 {
		return nil, nil
	}
	t := &hostFuncTable{funcs: make(map[string]HostFunc, len(funcs))}
	meta := make(map[string]any, len(funcs))
	for _, f := range funcs {
		switch {
		case f.name == "" || f.call == nil:
			return nil, fmt.Errorf("%w: a host function without a name (make them with mlbridge.Func)", ErrInvalidConfiguration)
		case t.funcs[f.name].call != nil:
			return nil, fmt.Errorf("%w: two host functions named %q", ErrInvalidConfiguration, f.name)
		}
		t.funcs[f.name] = f
		meta[f.name] = map[string]any{"description": f.desc, "schema": f.schema}
	}
	raw, err := msgpack.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("%w: host function schemas: %w", ErrInvalidConfiguration, err)
	}
	t.announce = raw
	return t, nil
}

func (t *hostFuncTable) CallHost(ctx context.Context, name string, args msgpack.RawMessage) (any, error) {
	f, ok := t.funcs[name]
	if !ok {
		return nil, fmt.Errorf("%w: no host function named %q (registered: %v)", ErrNotFound, name, t.names())
	}
	return f.call(ctx, args)
}

func (t *hostFuncTable) Announce() msgpack.RawMessage { return t.announce }

func (t *hostFuncTable) names() []string {
	names := make([]string, 0, len(t.funcs))
	for n := range t.funcs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// CallbackDepth is how many host calls ctx is nested in: 0 in ordinary code, 1 inside a
// host function Python called, 2 inside one called from a Python call made by that, ...
func CallbackDepth(ctx context.Context) int { return worker.CallbackDepth(ctx) }

// withHostFuncs sets the worker config's host functions from c.
func (c Config) withHostFuncs(w *worker.Config) error {
	t, err := newHostFuncTable(c.HostFuncs)
	if err != nil {
		return err
	}
	if t != nil {
		w.HostFuncs = t
	}
	w.MaxCallbackDepth = c.MaxCallbackDepth
	return nil
}
