// Package adapters is the DSPy-specific API that existing users call: PythonPort (one Python
// process) and PythonPoolV2 (a pool), with CreateProgram, ExecuteProgram and friends.
//
// Deprecated: the multi-framework API replaces it: an mlbridge.Registry (or Pool) and the
// dspy package's Client. Everything here keeps working unchanged. `go fix ./...` inlines
// DSPyBridge only; `mlbridge migrate --apply` replaces the legacy types' method calls with
// p.Client calls and renames the options and type aliases; it reports the constructors,
// Options, method values and expressions, and the package-level functions, which a person
// rewrites (see docs/MIGRATION.md and each symbol's Deprecated note).
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
//
// Deprecated: use dspy.Bridge; `go fix` inlines it (`mlbridge migrate` renames it too).
//
//go:fix inline
const DSPyBridge = dspy.Bridge

// Options configures a PythonPort or PythonPoolV2.
//
// Deprecated: declare the bridge in a mlbridge.RegistryConfig (or mlbridge.PoolConfig).
// `mlbridge migrate` reports its uses; neither it nor `go fix` rewrites them.
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

	// Phase is the deprecation phase of this object's calls: off, log (default: once per op),
	// warn or error; empty reads $MLBRIDGE_DEPRECATION_PHASE. Every call is counted in the
	// OpenTelemetry counter mlbridge.legacy.calls whatever the phase.
	Phase Phase
}

// replacement is what the deprecation telemetry and logs point legacy callers to.
const replacement = "dspy.Client on a mlbridge.Registry adapter (docs/MIGRATION.md)"

// The legacy APIs the telemetry names (the counter's api attribute, PoolStats.ByAPI).
const (
	apiPort    = "adapters.PythonPort"
	apiPoolV2  = "adapters.PythonPoolV2"
	apiDefault = "adapters (package-level functions)"
)

// migration says, per legacy API, what each tool does with its calls: the deprecation log's
// "migrate" attribute and the ErrDeprecated message carry it. It matches the Deprecated notes
// (TestDeprecatedNotesNameTheirTool checks those against the directives and the analyzer).
var migration = map[string]string{
	apiPort: "`mlbridge migrate --apply` replaces the method calls with p.Client calls (`go fix` does not); " +
		"it reports NewPythonPort and the type, which a person replaces (docs/MIGRATION.md)",
	apiPoolV2: "`mlbridge migrate --apply` replaces the method calls with p.Client calls (`go fix` does not); " +
		"it reports NewPythonPoolV2 and the type, which a person replaces (docs/MIGRATION.md)",
	apiDefault: "neither `go fix` nor `mlbridge migrate` rewrites these calls; `mlbridge migrate` " +
		"reports them (docs/MIGRATION.md)",
}

// ProgramOption adjusts CreateProgram.
//
// Deprecated: use dspy.ProgramOption (`mlbridge migrate` renames it; not marked for `go fix`,
// whose fixes conflict when an inlined call's argument names the alias).
type ProgramOption = dspy.ProgramOption

// WithID gives the program the id id instead of a generated one; see dspy.WithID.
//
// Deprecated: use dspy.WithID (`mlbridge migrate` renames the call; not marked for `go fix`,
// whose inliner drops comments inside the arguments and adds a second import declaration).
func WithID(id string) ProgramOption { return dspy.WithID(id) }

// ProgramInfo describes a program as a worker built it.
//
// Deprecated: use dspy.ProgramInfo (`mlbridge migrate` renames it; not marked for `go fix`,
// whose fixes conflict when an inlined call's argument names the alias).
type ProgramInfo = dspy.ProgramInfo

// FieldInfo is one field of a ProgramInfo.
//
// Deprecated: use dspy.FieldInfo (`mlbridge migrate` renames it; not marked for `go fix`,
// whose fixes conflict when an inlined call's argument names the alias).
type FieldInfo = dspy.FieldInfo

// LMConfig selects the language model of every worker.
//
// Deprecated: use dspy.LMConfig (`mlbridge migrate` renames it; not marked for `go fix`,
// whose fixes conflict when an inlined call's argument names the alias).
type LMConfig = dspy.LMConfig

// WithModule selects the DSPy module: "Predict" (default) or "ChainOfThought".
//
// Deprecated: use dspy.WithModule (`mlbridge migrate` renames the call; not marked for `go fix`,
// whose inliner drops comments inside the arguments and adds a second import declaration).
func WithModule(module string) ProgramOption { return dspy.WithModule(module) }

// WithInstructions sets the signature's instructions.
//
// Deprecated: use dspy.WithInstructions (`mlbridge migrate` renames the call; not marked for `go fix`,
// whose inliner drops comments inside the arguments and adds a second import declaration).
func WithInstructions(text string) ProgramOption { return dspy.WithInstructions(text) }

// WithFieldDescriptions describes signature fields by name.
//
// Deprecated: use dspy.WithFieldDescriptions (`mlbridge migrate` renames the call; not marked for `go fix`,
// whose inliner drops comments inside the arguments and adds a second import declaration).
func WithFieldDescriptions(desc map[string]string) ProgramOption {
	return dspy.WithFieldDescriptions(desc)
}

// open returns the client a legacy type wraps, and whether the legacy type owns its adapter.
func open(ctx context.Context, o Options, size int, api string) (*dspy.Client, bool, error) {
	phase, err := resolvePhase(o.Phase)
	if err != nil {
		return nil, false, err
	}
	t := newTelemetry(api, replacement, phase, o.Logger)
	if _, err := t.record(ctx, "open"); err != nil {
		return nil, false, err
	}
	if o.Adapter != nil {
		return dspy.New(countingAdapter{o.Adapter, t}), false, nil
	}
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: DSPyBridge, Python: o.Python, EnvAllow: o.EnvAllow, Logger: o.Logger},
		Size:   size, Store: o.Store, Preload: size > 1,
	})
	if err != nil {
		return nil, false, err
	}
	return dspy.New(countingAdapter{p, t}), true, nil
}
