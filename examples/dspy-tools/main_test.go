package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge/dspy"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// The example end to end with DSPy's DummyLM scripting a correct agent: one call of the Go
// tool, then finish, then the answer. The Go function runs once and the printed trajectory
// shows its observation.
func TestDSPyToolsScripted(t *testing.T) {
	answers := []map[string]any{
		{"next_thought": "look Kenya up", "next_tool_name": "country_facts", "next_tool_args": map[string]any{"country": "Kenya"}},
		{"next_thought": "the capital is Nairobi", "next_tool_name": "finish", "next_tool_args": map[string]any{}},
		{"reasoning": "country_facts says Nairobi", "answer": "Nairobi"},
	}
	var out strings.Builder
	res, err := run(context.Background(), &out, options{
		question: "What is the capital of Kenya?", maxIters: 3, python: testenv.Python(t),
		lm: dspy.LMConfig{Provider: "dummy", Answers: answers},
	})
	if err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if res.failed || res.toolCalls != 1 || res.toolSteps != 1 || res.steps != 2 || res.answer != "Nairobi" {
		t.Fatalf("outcome %+v\n%s", res, text)
	}
	for _, want := range []string{`[Go] country_facts(country="Kenya")`, "tool:        country_facts map[country:Kenya]",
		"capital:Nairobi", "A: Nairobi", "the Go tool ran 1 time(s) in 2 step(s)"} {
		if !strings.Contains(text, want) {
			t.Errorf("the output lacks %q:\n%s", want, text)
		}
	}
}

// The example on the real local model (SmolLM2-135M), two steps at most. What the model does
// is not asserted (it may not call the tool, or write a step that does not parse: the example
// says so); what is: the run ends without an error of the bridge, and every trajectory step
// that names the Go tool ran it exactly once.
func TestDSPyToolsLocalModel(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the local model")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out strings.Builder
	res, err := run(ctx, &out, options{
		question: "What is the capital of Kenya?", maxIters: 2, python: testenv.Python(t),
		lm: dspy.LMConfig{Provider: "local", MaxTokens: 192},
	})
	t.Logf("outcome %+v\n%s", res, out.String())
	if err != nil {
		t.Fatal(err)
	}
	if !res.failed && int64(res.toolSteps) != res.toolCalls {
		t.Fatalf("%d steps named the Go tool, which ran %d times", res.toolSteps, res.toolCalls)
	}
	if n := strings.Count(out.String(), "[Go] country_facts("); int64(n) != res.toolCalls {
		t.Fatalf("%d calls printed, %d counted", n, res.toolCalls)
	}
}
