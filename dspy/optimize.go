package dspy

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/store"
)

// The optimizers Optimize runs, and the Options keys each takes (anything else is refused by
// the worker with ErrInvalidArgument; a missing key keeps DSPy's default):
//
//   - "BootstrapFewShot": max_bootstrapped_demos, max_labeled_demos, max_rounds, max_errors.
//   - "BootstrapFewShotWithRandomSearch": the same and num_candidate_programs.
//   - "MIPROv2" (auto "light" unless Options["auto"] says "medium" or "heavy"): auto,
//     max_bootstrapped_demos, max_labeled_demos, max_errors, seed, minibatch_size. It needs the
//     optuna package in the workers' Python (the worker package's "mipro" extra;
//     ErrInvalidConfiguration otherwise), and an LM that can write instructions: it asks the
//     LM to propose them (an LM that cannot is ErrModel).
var optimizers = []string{"BootstrapFewShot", "BootstrapFewShotWithRandomSearch", "MIPROv2"}

// ErrProgramChanged: the program was redefined while it was being optimized, so the result,
// computed from the older definition, was not stored.
var ErrProgramChanged = errors.New("dspy: the program changed during the optimization")

// OptimizeConfig is an optimizer run of Optimize.
type OptimizeConfig struct {
	Optimizer string
	// Trainset holds the examples: the program's input fields and the gold value of the
	// metric's field (and of any other output field, used in labeled demos).
	Trainset []map[string]any
	// Valset, optional, is what candidates are scored on; DSPy's default otherwise (the
	// trainset for the random search, a split of it for MIPROv2).
	Valset    []map[string]any
	Metric    Metric
	InputKeys []string       // the input fields of the examples; empty means the signature's inputs
	Options   map[string]any // the optimizer's own options, by DSPy's name (see optimizers)
	// Progress, if set, is called with every progress event, in order, on the calling
	// goroutine: a slow Progress slows the stream, not the optimizer.
	Progress func(Progress)
}

// Progress is one event of an optimization.
type Progress struct {
	// Event is "metric" (an example was scored: Calls so far, Score this one's) or "trial" (a
	// candidate program was evaluated: Trial, from 1, and Score, its mean).
	Event string  `msgpack:"event"`
	Trial int     `msgpack:"trial"`
	Calls int     `msgpack:"calls"`
	Score float64 `msgpack:"score"`
}

// OptimizeResult describes the optimized program, stored as the program's new version.
type OptimizeResult struct {
	Version     uint64   // the program's definition version holding the optimized state
	Demos       int      `msgpack:"demos"`        // few-shot demos of the optimized program
	Trials      int      `msgpack:"trials"`       // candidate programs evaluated
	MetricCalls int      `msgpack:"metric_calls"` // examples scored
	BestScore   *float64 `msgpack:"best_score"`   // the best candidate's score, when candidates were scored
}

// optimizeChunk is one item of the optimize_program stream: an event, or the last, the result.
type optimizeChunk struct {
	Progress
	Result *struct {
		OptimizeResult
		State []byte `msgpack:"state"`
	} `msgpack:"result"`
}

// Optimize runs a DSPy optimizer on program id and stores the optimized program — DSPy's
// dump_state JSON, in the definition's State — as the program's next version: every worker,
// including ones started later or by a new host on the same persistent store, runs the
// optimized program from then on. The optimizer compiles a copy on one worker; calls to the
// program keep running the current version meanwhile.
//
// Progress streams while the optimizer runs. Ending ctx stops the optimizer in Python at its
// next module, LM or metric call, and Optimize returns an error matching
// mlbridge.ErrCancelled and ctx's error; nothing is stored. If the program is redefined while it is optimized, the result is
// not stored either (ErrProgramChanged).
func (c *Client) Optimize(ctx context.Context, id string, cfg OptimizeConfig) (OptimizeResult, error) {
	d, err := c.a.Get(ctx, id)
	if err != nil && !errors.Is(err, mlbridge.ErrNotFound) {
		return OptimizeResult{}, err // a store that cannot be read now is not a missing program
	}
	if err != nil || d.Kind != "program" {
		return OptimizeResult{}, fmt.Errorf("%w: program %q", mlbridge.ErrNotFound, id)
	}
	if !slices.Contains(optimizers, cfg.Optimizer) {
		return OptimizeResult{}, fmt.Errorf("%w: unknown optimizer %q (have: %v)", mlbridge.ErrInvalidArgument, cfg.Optimizer, optimizers)
	}
	if err := checkExamples("trainset", cfg.Trainset, cfg.Metric, true); err != nil {
		return OptimizeResult{}, err
	}
	if err := checkExamples("valset", cfg.Valset, cfg.Metric, false); err != nil {
		return OptimizeResult{}, err
	}
	args := map[string]any{
		"program_id": id, "optimizer": cfg.Optimizer, "trainset": examplesArg(cfg.Trainset), "metric": cfg.Metric.spec(),
	}
	if len(cfg.Valset) > 0 {
		args["valset"] = examplesArg(cfg.Valset)
	}
	if len(cfg.Options) > 0 {
		args["options"] = cfg.Options
	}
	if len(cfg.InputKeys) > 0 {
		args["input_keys"] = cfg.InputKeys
	}
	var last optimizeChunk
	for r, err := range c.a.Stream(ctx, "optimize_program", args, mlbridge.Uses(id)) {
		if err != nil {
			return OptimizeResult{}, err
		}
		var chunk optimizeChunk
		if err := r.Decode(&chunk); err != nil {
			return OptimizeResult{}, fmt.Errorf("%w: optimize_program sent %v", mlbridge.ErrSerialization, err)
		}
		if chunk.Result != nil {
			last = chunk
		} else if cfg.Progress != nil {
			cfg.Progress(chunk.Progress)
		}
	}
	if last.Result == nil {
		return OptimizeResult{}, fmt.Errorf("%w: optimize_program ended without a result", mlbridge.ErrProtocol)
	}
	// Stored only over the version it optimized: a compare-and-set on the version read
	// (IfVersion). The read first is for a node that predates IfVersion and would write
	// unconditionally: it catches a redefinition made during the optimization, leaving
	// only the instant before the write.
	switch cur, err := c.a.Get(ctx, id); {
	case errors.Is(err, mlbridge.ErrNotFound):
		return OptimizeResult{}, fmt.Errorf("%w: program %q was deleted during the optimization: %w", ErrProgramChanged, id, err)
	case err != nil:
		return OptimizeResult{}, err // the store cannot be read now: nothing is stored
	case cur.Version != d.Version:
		return OptimizeResult{}, fmt.Errorf("%w: program %q (version %d when the optimization started)", ErrProgramChanged, id, d.Version)
	}
	stored, err := c.a.Create(ctx, store.Definition{ID: id, Kind: "program", Spec: d.Spec, State: last.Result.State,
		Requires: d.Requires, IfVersion: d.Version})
	if errors.Is(err, store.ErrConflict) {
		return OptimizeResult{}, fmt.Errorf("%w: program %q (version %d when the optimization started): %w", ErrProgramChanged, id, d.Version, err)
	}
	if err != nil {
		return OptimizeResult{}, err
	}
	res := last.Result.OptimizeResult
	res.Version = stored.Version
	return res, nil
}
