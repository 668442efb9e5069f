package langchain_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testtools"
	"github.com/mlbridge/mlbridge/langchain"
)

func agentPool(t *testing.T, h *testtools.Host) (*langchain.Client, *mlbridge.Pool) {
	return open(t, 1, func(c *mlbridge.PoolConfig) { c.HostFuncs = h.Tools() })
}

func call(name, city string) langchain.ToolCall {
	return langchain.ToolCall{Name: name, Args: map[string]any{"city": city}}
}

// A tool_agent over Go functions, driven by langchain-core's fake chat model with scripted tool
// calls: two Go tools run (one fails with a typed error that goes back to the model as the
// tool's result), then a call with wrong arguments; the answer and trajectory come back to Go.
func TestToolAgent(t *testing.T) {
	ctx := context.Background()
	h := &testtools.Host{}
	c, p := agentPool(t, h)
	for _, mode := range []string{"async", "sync"} {
		t.Run(mode, func(t *testing.T) {
			if _, err := p.Call(ctx, "set_handler_mode", map[string]any{"op": "invoke", "mode": mode}); err != nil {
				t.Fatal(err)
			}
			h.Forget()
			model, agent := "m-"+mode, "agent-"+mode
			if err := c.CreateModel(ctx, model, langchain.ModelConfig{Provider: "fake", Turns: []langchain.FakeTurn{
				{ToolCalls: []langchain.ToolCall{call("weather", "Atlantis"), call("local_time", "Paris")}},
				{ToolCalls: []langchain.ToolCall{call("weather", "Paris"), {Name: "weather", Args: map[string]any{"town": "Rome"}}}},
				{Content: "21.5 °C in Paris, at noon"},
			}}); err != nil {
				t.Fatal(err)
			}
			if err := c.CreateChain(ctx, agent, langchain.ChainConfig{Kind: "tool_agent", Model: model,
				Template: "{question}", Tools: []string{"weather", "local_time"}, MaxIters: 5}); err != nil {
				t.Fatal(err)
			}
			got, err := mlbridge.Decode[langchain.AgentResult](c.Invoke(ctx, agent, map[string]any{"question": "How warm is Paris?"}))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("answer %q finished %v", got.Answer, got.Finished)
			for i, s := range got.Trajectory {
				t.Logf("step %d: %s %v -> result %v error %q", i, s.Tool, s.Args, s.Result, s.Error)
			}
			if got.Answer != "21.5 °C in Paris, at noon" || !got.Finished || len(got.Trajectory) != 4 {
				t.Fatalf("result %+v", got)
			}
			if r := h.Ran(); r != "weather:Atlantis,local_time:Paris,weather:Paris" {
				t.Fatalf("the Go tools ran for %s", r)
			}
			tr := got.Trajectory
			if tr[0].Tool != "weather" || !strings.Contains(tr[0].Error, "not_found") || !strings.Contains(tr[0].Error, `no city named "Atlantis"`) {
				t.Errorf("step 0: %+v", tr[0])
			}
			if tr[1].Tool != "local_time" || tr[1].Result != "12:00" || tr[1].Error != "" {
				t.Errorf("step 1: %+v", tr[1])
			}
			if m, ok := tr[2].Result.(map[string]any); !ok || m["city"] != "Paris" {
				t.Errorf("step 2: %+v", tr[2])
			}
			if !strings.Contains(tr[3].Error, "invalid_argument") || tr[3].Args["town"] != "Rome" {
				t.Errorf("step 3 (wrong arguments): %+v", tr[3])
			}
		})
	}
}

// Validation: in Go at CreateChain, and a tool no host function has, by the worker building
// the definition.
func TestToolAgentInvalid(t *testing.T) {
	ctx := context.Background()
	c, _ := agentPool(t, &testtools.Host{})
	if err := c.CreateModel(ctx, "m", langchain.ModelConfig{Provider: "fake", Turns: []langchain.FakeTurn{{Content: "hi"}}}); err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]langchain.ChainConfig{
		"no tools":      {Kind: "tool_agent", Model: "m", Template: "{q}"},
		"unknown kind":  {Kind: "agent", Model: "m", Template: "{q}", Tools: []string{"weather"}},
		"tools w/chain": {Model: "m", Template: "{q}", Tools: []string{"weather"}},
		"unknown tool":  {Kind: "tool_agent", Model: "m", Template: "{q}", Tools: []string{"weather", "stocks"}},
	} {
		err := c.CreateChain(ctx, "bad", cfg)
		t.Logf("%s: %v", name, err)
		if !errors.Is(err, mlbridge.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Cancelling the Go caller while the agent waits on a slow Go tool: the tool's ctx is
// cancelled, Invoke returns at once, and the agent does not go on (no further model turn runs
// its tool call); the worker then serves the next call.
func TestToolAgentCancel(t *testing.T) {
	for _, mode := range []string{"async", "sync"} {
		t.Run(mode, func(t *testing.T) { testToolAgentCancel(t, mode) })
	}
}

func testToolAgentCancel(t *testing.T, mode string) {
	h := &testtools.Host{SlowStarted: make(chan struct{}), SlowEnded: make(chan error, 1)}
	c, p := agentPool(t, h)
	ctx := context.Background()
	if _, err := p.Call(ctx, "set_handler_mode", map[string]any{"op": "invoke", "mode": mode}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateModel(ctx, "m", langchain.ModelConfig{Provider: "fake", Turns: []langchain.FakeTurn{
		{ToolCalls: []langchain.ToolCall{call("slow", "Paris")}},
		{ToolCalls: []langchain.ToolCall{call("weather", "Rome")}},
		{Content: "done"},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateChain(ctx, "agent", langchain.ChainConfig{Kind: "tool_agent", Model: "m", Template: "{q}",
		Tools: []string{"slow", "weather"}}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() { <-h.SlowStarted; cancel() }()
	start := time.Now()
	_, err := c.Invoke(cctx, "agent", map[string]any{"q": "go"})
	t.Logf("invoke returned after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if !errors.Is(err, context.Canceled) && !errors.Is(err, mlbridge.ErrCancelled) {
		t.Fatalf("err %v", err)
	}
	select {
	case e := <-h.SlowEnded:
		if !errors.Is(e, context.Canceled) {
			t.Fatalf("the slow tool ended with %v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the slow tool's ctx was not cancelled")
	}
	if err := c.CreateModel(ctx, "m2", langchain.ModelConfig{Provider: "fake", Responses: []string{"ok"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Chat("m2", "").Send(ctx, "still there?"); err != nil {
		t.Fatalf("the worker after the cancel: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	if r := h.Ran(); r != "slow:Paris" {
		t.Fatalf("the agent went on after the cancel: %s", r)
	}
}

// The model of a tool_agent is given each Go tool as Go declared it: the fake model records
// the tools bind_tools got, in the form a tool-calling model sends (what ChatOpenAI's
// bind_tools makes of them), and describe shows them — name, description, argument schema.
func TestToolAgentModelIsGivenTheGoTools(t *testing.T) {
	ctx := context.Background()
	h := &testtools.Host{}
	c, p := agentPool(t, h)
	if err := c.CreateModel(ctx, "m", langchain.ModelConfig{Provider: "fake", Turns: []langchain.FakeTurn{{Content: "ok"}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateChain(ctx, "agent", langchain.ChainConfig{Kind: "tool_agent", Model: "m", Template: "{q}",
		Tools: []string{"weather", "local_time"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Invoke(ctx, "agent", map[string]any{"q": "hi"}); err != nil {
		t.Fatal(err)
	}
	d, err := p.Describe(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	var want []any
	for _, f := range h.Tools()[:2] {
		want = append(want, map[string]any{"type": "function", "function": map[string]any{
			"name": f.Name(), "description": f.Description(), "parameters": f.Schema()}})
	}
	got, _ := json.Marshal(d["bound_tools"])
	exp, _ := json.Marshal(want)
	var g, e any
	_ = json.Unmarshal(got, &g)
	_ = json.Unmarshal(exp, &e)
	t.Logf("bound: %s", got)
	if !reflect.DeepEqual(g, e) {
		t.Fatalf("the model was bound with %s, want %s", got, exp)
	}
}
