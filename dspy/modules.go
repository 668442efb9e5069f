package dspy

import (
	"context"
	"fmt"
	"slices"

	"github.com/mlbridge/mlbridge"
)

// The modules WithModule accepts, and what each needs:
//
//   - "Predict" (default), "ChainOfThought": the signature alone.
//   - "MultiChainComparison": WithAttempts(M) ChainOfThought attempts (default 3), which DSPy's
//     MultiChainComparison compares into one answer (with a "rationale" output).
//   - "BestOfN", "Refine": WithReward (required), WithAttempts(N) (default 3), WithThreshold
//     (default 1.0), WithInner ("Predict" default, or "ChainOfThought"). Refine asks the LM for
//     advice after an attempt under the threshold and runs the next attempt with it.
//   - "ReAct": WithTools (required), the names of Go functions registered on the pool
//     (mlbridge.Func in Config.HostFuncs), which the agent calls as DSPy tools, with their
//     descriptions and argument schemas; WithMaxIters (default 5). ExecuteProgram's result
//     holds the output fields and "trajectory": each step's thought, tool name, tool args and
//     observation (a tool's error is the observation, as DSPy records it).
var modules = []string{"Predict", "ChainOfThought", "MultiChainComparison", "BestOfN", "Refine", "ReAct"}

// WithTools names the host functions a ReAct program may call as tools.
func WithTools(names ...string) ProgramOption {
	return func(s map[string]any) { s["tools"] = append([]string(nil), names...) }
}

// WithMaxIters bounds a ReAct program's tool-calling steps (default 5).
func WithMaxIters(n int) ProgramOption { return func(s map[string]any) { s["max_iters"] = n } }

// innerModules are the modules BestOfN and Refine can run.
var innerModules = []string{"Predict", "ChainOfThought"}

// WithAttempts sets how many attempts MultiChainComparison compares, or BestOfN and Refine make
// at most.
func WithAttempts(n int) ProgramOption { return func(s map[string]any) { s["attempts"] = n } }

// WithReward sets the reward BestOfN and Refine score each attempt with, and the threshold at
// which an attempt is taken without trying further.
func WithReward(r Reward, threshold float64) ProgramOption {
	return func(s map[string]any) {
		s["reward"] = r.spec()
		s["threshold"] = threshold
	}
}

// WithInner selects the module BestOfN and Refine run: "Predict" (default) or "ChainOfThought".
func WithInner(module string) ProgramOption { return func(s map[string]any) { s["inner"] = module } }

// Reward scores one prediction of BestOfN or Refine, from 0 to 1. It is built in
// (RewardExactMatch, RewardContains) or a Go function (GoReward, registered with RewardFunc).
type Reward struct {
	// Builtin is "exact_match" (1 when Field equals Target, ignoring case and surrounding or
	// repeated whitespace) or "contains" (1 when Field contains Target, the same way).
	Builtin string
	Field   string // the output field scored
	Target  string
	// Func, instead of Builtin, names a host function that computes the reward (see
	// RewardFunc).
	Func string
}

// RewardExactMatch rewards output field equal to target.
func RewardExactMatch(field, target string) Reward {
	return Reward{Builtin: "exact_match", Field: field, Target: target}
}

// RewardContains rewards output field containing target.
func RewardContains(field, target string) Reward {
	return Reward{Builtin: "contains", Field: field, Target: target}
}

// GoReward is the reward computed by the host function name, registered on the pool with
// RewardFunc (or mlbridge.Func with a RewardInput argument and a number result).
func GoReward(name string) Reward { return Reward{Func: name} }

// RewardInput is what a reward implemented in Go receives for each attempt.
type RewardInput struct {
	Inputs     map[string]any `msgpack:"inputs"`     // the program's inputs
	Prediction map[string]any `msgpack:"prediction"` // the attempt's output fields
}

// RewardFunc makes fn a host function BestOfN and Refine can score attempts with: register
// it in Config.HostFuncs (or RegistryOptions.HostFuncs) and name it with GoReward(name) in
// WithReward. It runs once per attempt, with the ctx of the ExecuteProgram call; an error
// from fn fails that call with fn's error (its mlbridge category kept), instead of counting
// as one failed attempt.
func RewardFunc(name string, fn func(ctx context.Context, in RewardInput) (float64, error)) mlbridge.HostFunc {
	return mlbridge.Func(name, fn, mlbridge.Describe("a DSPy reward: scores one BestOfN or Refine attempt"))
}

func (r Reward) spec() map[string]any {
	if r.Func != "" {
		s := map[string]any{"go": r.Func}
		if r.Builtin != "" || r.Field != "" || r.Target != "" { // refused by checkModule
			s["builtin"], s["field"], s["target"] = r.Builtin, r.Field, r.Target
		}
		return s
	}
	return map[string]any{"builtin": r.Builtin, "field": r.Field, "target": r.Target}
}

// checkModule refuses, before anything is stored, a module spec a worker would refuse: an
// unknown module, or options the module needs missing or out of range. Python checks it all
// again (a definition can come from elsewhere); this gives the error without a round trip.
func checkModule(sig mlbridge.Signature, spec map[string]any) error {
	module, _ := spec["module"].(string)
	if _, set := spec["module"]; !set {
		module = "Predict"
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: module %s: "+format, append([]any{mlbridge.ErrInvalidArgument, module}, args...)...)
	}
	if !slices.Contains(modules, module) {
		return bad("unknown module (have: %v)", modules)
	}
	if module == "ReAct" {
		return checkReAct(spec, bad)
	}
	for _, k := range []string{"tools", "max_iters"} {
		if _, set := spec[k]; set {
			return bad("takes no %s option (only ReAct does)", k)
		}
	}
	if n, ok := spec["attempts"].(int); ok && n < 1 {
		return bad("WithAttempts(%d): want at least 1", n)
	}
	if module != "BestOfN" && module != "Refine" {
		only := []string{"reward", "inner"}
		if module != "MultiChainComparison" {
			only = append(only, "attempts")
		}
		for _, k := range only {
			if _, set := spec[k]; set {
				return bad("takes no %s option", k)
			}
		}
		return nil
	}
	if inner, set := spec["inner"].(string); set && !slices.Contains(innerModules, inner) {
		return bad("unknown inner module %q (have: %v)", inner, innerModules)
	}
	r, ok := spec["reward"].(map[string]any)
	if !ok {
		return bad("needs WithReward")
	}
	if fn, isGo := r["go"]; isGo {
		if len(r) != 1 {
			return bad("a reward is a Go function (Func %q) or a builtin, not both", fn)
		}
		return nil // the worker checks the function is registered
	}
	if b := r["builtin"]; b != "exact_match" && b != "contains" {
		return bad("unknown builtin reward %q (have: exact_match, contains)", b)
	}
	if !slices.ContainsFunc(sig.Outputs, func(f mlbridge.Field) bool { return f.Name == r["field"] }) {
		return bad("the reward scores %q, which is not an output of %q", r["field"], sig.String())
	}
	return nil
}

func checkReAct(spec map[string]any, bad func(string, ...any) error) error {
	var n int
	switch tools := spec["tools"].(type) {
	case []string:
		n = len(tools)
	case []any:
		n = len(tools)
	}
	if n == 0 {
		return bad("ReAct needs tools: WithTools(names of Go functions registered with mlbridge.Func)")
	}
	if n, ok := spec["max_iters"].(int); ok && n < 1 {
		return bad("WithMaxIters(%d): want at least 1", n)
	}
	for _, k := range []string{"reward", "inner", "attempts"} {
		if _, set := spec[k]; set {
			return bad("takes no %s option", k)
		}
	}
	return nil
}
