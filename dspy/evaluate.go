package dspy

import (
	"context"

	"github.com/mlbridge/mlbridge"
)

// EvaluateConfig is what Evaluate scores a program on.
type EvaluateConfig struct {
	// Devset holds the examples: the program's input fields and the gold value of the
	// metric's field.
	Devset []map[string]any
	Metric Metric
	// InputKeys names the input fields of the examples; empty means the signature's inputs.
	InputKeys []string
}

// EvaluateResult is DSPy's Evaluate of a program: the mean score and each example's.
type EvaluateResult struct {
	Score   float64         `msgpack:"score"` // the mean of Results' scores, from 0 to 1
	Results []ExampleResult `msgpack:"results"`
}

// ExampleResult is one example of an EvaluateResult, in Devset's order.
type ExampleResult struct {
	Prediction map[string]any `msgpack:"prediction"`
	Score      float64        `msgpack:"score"`
	// Failed is set when the program failed on the example (an LM or parse error, logged by
	// the worker): it scores 0 and Prediction is empty.
	Failed bool `msgpack:"failed"`
}

// Evaluate runs program id on every example of cfg.Devset with DSPy's Evaluate and scores
// the predictions with cfg.Metric. Ending ctx stops the evaluation in Python at its next
// module or LM call.
func (c *Client) Evaluate(ctx context.Context, id string, cfg EvaluateConfig) (EvaluateResult, error) {
	if err := c.exists(ctx, id); err != nil {
		return EvaluateResult{}, err
	}
	if err := checkExamples("devset", cfg.Devset, cfg.Metric, true); err != nil {
		return EvaluateResult{}, err
	}
	args := map[string]any{"program_id": id, "devset": examplesArg(cfg.Devset), "metric": cfg.Metric.spec()}
	if len(cfg.InputKeys) > 0 {
		args["input_keys"] = cfg.InputKeys
	}
	return mlbridge.Decode[EvaluateResult](c.a.Call(ctx, "evaluate_program", args, mlbridge.Uses(id)))
}
