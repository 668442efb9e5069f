package dspy_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/dspy"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

type cityIn struct {
	City string `json:"city" desc:"the city's name"`
}

// A ReAct agent whose tools are Go functions: DummyLM scripts the steps (a tool call, then
// finish), the Go function runs for the call, and the trajectory comes back in the result.
func TestReActWithGoTools(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var calls []string
	weather := mlbridge.Func("weather", func(ctx context.Context, in cityIn) (map[string]any, error) {
		mu.Lock()
		calls = append(calls, in.City)
		mu.Unlock()
		if in.City == "Atlantis" {
			return nil, fmt.Errorf("%w: no city named %q", mlbridge.ErrNotFound, in.City)
		}
		return map[string]any{"city": in.City, "temp_c": 21.5}, nil
	}, mlbridge.Describe("Current weather in a city"))
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: dspy.Bridge, Python: testenv.Python(t), HostFuncs: []mlbridge.HostFunc{weather}},
		Size:   1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	c := dspy.New(p)
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprint("async=", async), func(t *testing.T) {
			mu.Lock()
			calls = nil
			mu.Unlock()
			if async { // DSPy's acall: the tool is awaited on the worker's loop (host.call)
				for _, op := range []string{"execute_program", "execute"} {
					if _, err := p.Call(ctx, "set_handler_mode", map[string]any{"op": op, "mode": "async"}); err != nil {
						t.Fatal(err)
					}
				}
			}
			answers := []map[string]any{
				{"next_thought": "look up Atlantis first", "next_tool_name": "weather", "next_tool_args": map[string]any{"city": "Atlantis"}},
				{"next_thought": "then Paris", "next_tool_name": "weather", "next_tool_args": map[string]any{"city": "Paris"}},
				{"next_thought": "I know enough", "next_tool_name": "finish", "next_tool_args": map[string]any{}},
				{"reasoning": "the tool said 21.5", "answer": "21.5 °C in Paris"},
			}
			if err := c.ConfigureLM(ctx, dspy.LMConfig{Provider: "dummy", Answers: answers}); err != nil {
				t.Fatal(err)
			}
			id, err := c.CreateProgram(ctx, "question -> answer", dspy.WithModule("ReAct"), dspy.WithTools("weather"), dspy.WithMaxIters(4))
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.ExecuteProgram(ctx, id, map[string]any{"question": "How warm is Paris?"})
			if err != nil {
				t.Fatal(err)
			}
			if got["answer"] != "21.5 °C in Paris" {
				t.Fatalf("answer %v", got)
			}
			mu.Lock()
			ran := strings.Join(calls, ",")
			mu.Unlock()
			if ran != "Atlantis,Paris" {
				t.Fatalf("the Go tool ran for %v", ran)
			}
			traj, _ := got["trajectory"].(map[string]any)
			obs0, _ := traj["observation_0"].(string)
			obs1 := traj["observation_1"]
			if traj["tool_name_1"] != "weather" || !strings.Contains(obs0, "no city named") || traj["tool_name_2"] != "finish" {
				t.Fatalf("trajectory %v", traj)
			}
			if m, ok := obs1.(map[string]any); !ok || m["city"] != "Paris" {
				t.Fatalf("observation_1 %#v", obs1)
			}
			if want := map[bool]string{false: "in forward", true: "in aforward"}[async]; !strings.Contains(obs0, want) {
				t.Errorf("the tool's error was not raised %s: %s", want, obs0)
			}
		})
	}
}
