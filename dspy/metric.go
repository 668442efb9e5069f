package dspy

import (
	"fmt"
	"slices"

	"github.com/mlbridge/mlbridge"
)

// Metric scores a program's prediction against a gold example, from 0 to 1: what optimizers
// maximize and Evaluate averages. Only built-in metrics exist for now; a metric computed by a
// Go function will come with calls from Python back into Go (its spec will name it beside
// "builtin", so nothing here changes shape).
type Metric struct {
	// Builtin is one of:
	//   - "exact_match": 1 when the field equals the example's, ignoring case and surrounding
	//     or repeated whitespace;
	//   - "f1": DSPy's token F1 of the field against the example's (SQuAD normalization);
	//   - "contains": 1 when the field contains the example's, the same way as exact_match.
	Builtin string
	Field   string // the output field compared; every example must carry it
}

// ExactMatch scores 1 when output field equals the example's.
func ExactMatch(field string) Metric { return Metric{Builtin: "exact_match", Field: field} }

// F1 scores output field by token overlap with the example's.
func F1(field string) Metric { return Metric{Builtin: "f1", Field: field} }

// Contains scores 1 when output field contains the example's.
func Contains(field string) Metric { return Metric{Builtin: "contains", Field: field} }

var metrics = []string{"exact_match", "f1", "contains"}

func (m Metric) spec() map[string]any { return map[string]any{"builtin": m.Builtin, "field": m.Field} }

// checkExamples refuses, in Go, what Python would: an unknown metric, no examples, or an
// example without the field the metric compares.
func checkExamples(what string, examples []map[string]any, m Metric, required bool) error {
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
