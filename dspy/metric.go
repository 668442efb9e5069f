package dspy

import (
	"context"
	"fmt"
	"slices"

	"github.com/mlbridge/mlbridge"
)

// Metric scores a program's prediction against a gold example, from 0 to 1: what optimizers
// maximize and Evaluate averages. It is built in (ExactMatch, F1, Contains) or a Go function
// (GoMetric, registered with MetricFunc).
type Metric struct {
	// Builtin is one of:
	//   - "exact_match": 1 when the field equals the example's, ignoring case and surrounding
	//     or repeated whitespace;
	//   - "f1": DSPy's token F1 of the field against the example's (SQuAD normalization);
	//   - "contains": 1 when the field contains the example's, the same way as exact_match.
	Builtin string
	Field   string // the output field a builtin metric compares; every example must carry it
	// Func, instead of Builtin, names a host function that computes the score (see
	// MetricFunc). The examples then need only the program's inputs, and whatever labels the
	// function reads.
	Func string
}

// ExactMatch scores 1 when output field equals the example's.
func ExactMatch(field string) Metric { return Metric{Builtin: "exact_match", Field: field} }

// F1 scores output field by token overlap with the example's.
func F1(field string) Metric { return Metric{Builtin: "f1", Field: field} }

// Contains scores 1 when output field contains the example's.
func Contains(field string) Metric { return Metric{Builtin: "contains", Field: field} }

var metrics = []string{"exact_match", "f1", "contains"}

// GoMetric is the metric computed by the host function name, registered on the pool with
// MetricFunc (or mlbridge.Func with a MetricInput argument and a number result).
func GoMetric(name string) Metric { return Metric{Func: name} }

// MetricInput is what a metric implemented in Go receives for each example DSPy scores.
type MetricInput struct {
	Example    map[string]any `msgpack:"example"`    // the gold example: inputs and labels
	Prediction map[string]any `msgpack:"prediction"` // the program's output fields
}

// MetricFunc makes fn a host function DSPy can score with: register it in Config.HostFuncs
// (or RegistryOptions.HostFuncs) and name it with GoMetric(name) in OptimizeConfig or
// EvaluateConfig. The workers call it once per scored example, from the optimizer's or
// Evaluate's thread, with the ctx of the Optimize or Evaluate call that runs it: ending that
// ctx cancels a running fn and stops the run. An error from fn ends the whole run with that
// error (its mlbridge category kept: wrap ErrInvalidArgument, ErrNotFound, ...), instead of
// counting as one failed example.
func MetricFunc(name string, fn func(ctx context.Context, in MetricInput) (float64, error)) mlbridge.HostFunc {
	return mlbridge.Func(name, fn, mlbridge.Describe("a DSPy metric: scores a prediction against a gold example"))
}

func (m Metric) spec() map[string]any {
	if m.Func != "" {
		return map[string]any{"go": m.Func}
	}
	return map[string]any{"builtin": m.Builtin, "field": m.Field}
}

// checkExamples refuses, in Go, what Python would: an unknown metric, no examples, or an
// example without the field the metric compares.
func checkExamples(what string, examples []map[string]any, m Metric, required bool) error {
	if m.Func != "" {
		if m.Builtin != "" || m.Field != "" {
			return fmt.Errorf("%w: a metric is a Go function (Func %q) or a builtin (%q), not both", mlbridge.ErrInvalidArgument, m.Func, m.Builtin)
		}
		if len(examples) == 0 && required {
			return fmt.Errorf("%w: %s is empty", mlbridge.ErrInvalidArgument, what)
		}
		return nil
	}
	if !slices.Contains(metrics, m.Builtin) {
		return fmt.Errorf("%w: unknown metric %q (have: %v)", mlbridge.ErrInvalidArgument, m.Builtin, metrics)
	}
	if m.Field == "" {
		return fmt.Errorf("%w: metric %s needs the output field it compares", mlbridge.ErrInvalidArgument, m.Builtin)
	}
	if len(examples) == 0 && required {
		return fmt.Errorf("%w: %s is empty", mlbridge.ErrInvalidArgument, what)
	}
	for i, ex := range examples {
		if _, ok := ex[m.Field]; !ok {
			return fmt.Errorf("%w: %s[%d] has no %q, which the metric compares", mlbridge.ErrInvalidArgument, what, i, m.Field)
		}
	}
	return nil
}

// examplesArg is examples as msgpack-ready values.
func examplesArg(examples []map[string]any) []any {
	out := make([]any, len(examples))
	for i, e := range examples {
		out[i] = e
	}
	return out
}
