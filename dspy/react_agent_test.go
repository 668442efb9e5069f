package dspy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/dspy"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/internal/testtools"
)

// The ReAct tests below run DSPy's ReAct on DummyLM (scripted steps) in a worker of
// python/tests/dspy_inspect_bridges.py: the DSPy bridge plus two read-only ops, lm_history
// (DSPy's lm.history: what the agent was prompted with) and react_tools (the dspy.Tool
// objects a ReAct program holds). Each runs once on DSPy's sync path (forward, host.call_sync
// from a handler thread) and once on its async path (aforward, await host.call).

type askArgs struct {
	Question string `json:"question" desc:"a question for the agent"`
}

// agentHost is the Go side of an agent: the shared test tools (weather, local_time, slow) and
// ask, which calls back into Python.
type agentHost struct {
	testtools.Host

	mu      sync.Mutex   // guards depths and inner
	client  *dspy.Client // the ask tool runs a program on it: a call back into Python
	program string
	depths  []int // ask: mlbridge.CallbackDepth of each call
	inner   []map[string]any
}

func (h *agentHost) funcs() []mlbridge.HostFunc {
	// ask runs the agent's own program again, from inside its tool call: Go -> Python
	// (ExecuteProgram) -> Go (this tool) -> Python (the nested run) on the same pool.
	return append(h.Tools(), mlbridge.Func("ask", func(ctx context.Context, in askArgs) (any, error) {
		h.Record("ask:" + in.Question)
		out, err := h.client.ExecuteProgram(ctx, h.program, map[string]any{"question": in.Question})
		h.mu.Lock()
		h.depths = append(h.depths, mlbridge.CallbackDepth(ctx))
		h.inner = append(h.inner, out)
		h.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return out["answer"], nil
	}, mlbridge.Describe("Ask the agent itself a sub-question")))
}

func (h *agentHost) lookup(name string) mlbridge.HostFunc {
	for _, f := range h.funcs() {
		if f.Name() == name {
			return f
		}
	}
	panic(name)
}

// agentPool is a one-worker pool of the inspecting DSPy bridge with h's tools.
func agentPool(t *testing.T, h *agentHost, mutate ...func(*mlbridge.PoolConfig)) (*dspy.Client, *mlbridge.Pool) {
	t.Helper()
	cfg := mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: "dspy_inspect_bridges:InspectDSPyBridge", Python: testenv.Python(t),
			PythonPath: []string{filepath.Join(testenv.Root(), "python", "tests")}, HostFuncs: h.funcs()},
		Size: 1,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	p, err := mlbridge.OpenPool(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	h.client = dspy.New(p)
	return h.client, p
}

// forModes runs fn once per DSPy execution path: sync (forward on a handler thread) and async
// (aforward on the worker's loop).
func forModes(t *testing.T, p *mlbridge.Pool, fn func(t *testing.T, mode string)) {
	for _, mode := range []string{"sync", "async"} {
		t.Run(mode, func(t *testing.T) {
			for _, op := range []string{"execute_program", "execute"} {
				if _, err := p.Call(context.Background(), "set_handler_mode", map[string]any{"op": op, "mode": mode}); err != nil {
					t.Fatal(err)
				}
			}
			fn(t, mode)
		})
	}
}

type lmCall struct {
	Messages []struct {
		Role    string `msgpack:"role"`
		Content string `msgpack:"content"`
	} `msgpack:"messages"`
	Outputs []string `msgpack:"outputs"`
}

// lmHistory is every call the worker's LM served since it was configured: what DSPy sent.
func lmHistory(t *testing.T, p *mlbridge.Pool) []lmCall {
	t.Helper()
	h, err := mlbridge.Decode[[]lmCall](p.Call(context.Background(), "lm_history", nil))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func step(thought, tool string, args map[string]any) map[string]any {
	return map[string]any{"next_thought": thought, "next_tool_name": tool, "next_tool_args": args}
}

func newAgent(t *testing.T, c *dspy.Client, answers []map[string]any, tools ...string) string {
	t.Helper()
	ctx := context.Background()
	if err := c.ConfigureLM(ctx, dspy.LMConfig{Provider: "dummy", Answers: answers}); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateProgram(ctx, "question -> answer", dspy.WithModule("ReAct"), dspy.WithTools(tools...), dspy.WithMaxIters(6))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func observation(t *testing.T, out map[string]any, i int) any {
	t.Helper()
	traj, ok := out["trajectory"].(map[string]any)
	if !ok {
		t.Fatalf("no trajectory in %v", out)
	}
	return traj[fmt.Sprint("observation_", i)]
}

// A ReAct agent with two Go tools: one fails with a typed Go error (ErrNotFound), which the
// agent sees as its observation (in the trajectory and in its next prompt) and goes on; the
// other answers; the run succeeds and the whole trajectory comes back to Go. The prompt DSPy
// sends names both tools with the descriptions Go gave them.
func TestReActAgentTwoGoToolsOneFails(t *testing.T) {
	h := &agentHost{}
	c, p := agentPool(t, h)
	forModes(t, p, func(t *testing.T, mode string) {
		h.Forget()
		id := newAgent(t, c, []map[string]any{
			step("Atlantis first", "weather", map[string]any{"city": "Atlantis"}),
			step("now the time", "local_time", map[string]any{"city": "Paris"}),
			step("and the weather", "weather", map[string]any{"city": "Paris", "units": "C"}),
			step("I know enough", "finish", map[string]any{}),
			{"reasoning": "21.5 at noon", "answer": "21.5 °C in Paris at noon"},
		}, "weather", "local_time")
		out, err := c.ExecuteProgram(context.Background(), id, map[string]any{"question": "How warm is Paris, and what time is it?"})
		if err != nil {
			t.Fatal(err)
		}
		if out["answer"] != "21.5 °C in Paris at noon" {
			t.Fatalf("answer %v", out)
		}
		if r := h.Ran(); r != "weather:Atlantis,local_time:Paris,weather:Paris" {
			t.Fatalf("the Go tools ran for %s", r)
		}
		obs0, _ := observation(t, out, 0).(string)
		t.Logf("what the agent saw of the Go error (its end): %q", tail(obs0))
		for _, want := range []string{"Execution error in weather", "NotFound", `no city named \"Atlantis\"`} {
			if !strings.Contains(fmt.Sprintf("%q", obs0), want) {
				t.Fatalf("observation_0 lacks %s: %q", want, obs0)
			}
		}
		if o := observation(t, out, 1); o != "12:00" {
			t.Fatalf("observation_1 %#v", o)
		}
		if o, _ := observation(t, out, 2).(map[string]any); o["city"] != "Paris" || o["temp_c"] != 21.5 {
			t.Fatalf("observation_2 %#v", observation(t, out, 2))
		}

		calls := lmHistory(t, p)
		if len(calls) != 5 {
			t.Fatalf("%d LM calls, want 5 (4 steps, the extraction)", len(calls))
		}
		system := calls[0].Messages[0].Content
		for _, want := range []string{
			"weather, whose description is <desc>Current weather in a city</desc>",
			"local_time, whose description is <desc>Local time in a city</desc>",
			`'city': {'type': 'string', 'description': "the city's name"}`,
		} {
			if !strings.Contains(system, want) {
				t.Fatalf("ReAct's prompt lacks %q:\n%s", want, system)
			}
		}
		// the step after the failure was asked with the Go error in the trajectory
		if next := calls[1].Messages[len(calls[1].Messages)-1].Content; !strings.Contains(next, `no city named "Atlantis"`) {
			t.Fatalf("the agent's second prompt does not show the error:\n%s", next)
		}
	})
}

// What DSPy holds for each Go tool is what Go declared: the name, the description, the
// properties of the argument schema as ReAct's args, and the whole schema (required list
// included: units is optional) as the function-calling parameters.
func TestReActToolsAreTheGoDeclaration(t *testing.T) {
	h := &agentHost{}
	c, p := agentPool(t, h)
	id := newAgent(t, c, []map[string]any{{"answer": "unused"}}, "weather", "local_time")
	got, err := mlbridge.Decode[struct {
		Instructions string `msgpack:"instructions"`
		Tools        []struct {
			Name     string         `msgpack:"name"`
			Desc     string         `msgpack:"desc"`
			Args     map[string]any `msgpack:"args"`
			Prompt   string         `msgpack:"prompt"`
			Function map[string]any `msgpack:"function"`
		} `msgpack:"tools"`
	}](p.Call(context.Background(), "react_tools", map[string]any{"program_id": id}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Tools) != 3 || got.Tools[2].Name != "finish" { // DSPy adds finish
		t.Fatalf("tools %+v", got.Tools)
	}
	for _, tool := range got.Tools[:2] {
		f := h.lookup(tool.Name)
		t.Logf("%s: %s", tool.Name, tool.Prompt)
		if tool.Desc != f.Description() || !sameJSON(tool.Args, f.Schema()["properties"]) {
			t.Errorf("%s: desc %q args %v; Go declared %q %v", tool.Name, tool.Desc, tool.Args, f.Description(), f.Schema())
		}
		want := map[string]any{"name": f.Name(), "description": f.Description(), "parameters": f.Schema()}
		if !sameJSON(tool.Function, want) {
			t.Errorf("%s: function-calling form %v, want %v", tool.Name, tool.Function, want)
		}
		if !strings.Contains(got.Instructions, tool.Prompt) {
			t.Errorf("ReAct's instructions lack %q", tool.Prompt)
		}
	}
	if req := h.lookup("weather").Schema()["required"]; !sameJSON(req, []string{"city"}) {
		t.Fatalf("weather's required %v", req)
	}
}

// tail is the end of an observation: DSPy writes a failing tool's traceback, then the error.
func tail(s string) string {
	return s[max(0, len(s)-160):]
}

func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	var va, vb any
	return err1 == nil && err2 == nil && json.Unmarshal(ja, &va) == nil && json.Unmarshal(jb, &vb) == nil && reflect.DeepEqual(va, vb)
}

// Wrong arguments from the agent: an unknown name and a missing required one are refused by
// Go (invalid_argument, before the function runs), a value of the wrong type by DSPy's own
// check of the schema Go declared; each is the agent's observation, nothing crashes, the run
// finishes and the worker serves the next call.
func TestReActToolWrongArguments(t *testing.T) {
	h := &agentHost{}
	c, p := agentPool(t, h)
	forModes(t, p, func(t *testing.T, mode string) {
		h.Forget()
		id := newAgent(t, c, []map[string]any{
			step("by town", "weather", map[string]any{"town": "Rome"}),
			step("without a city", "weather", map[string]any{"units": "C"}),
			step("a number", "weather", map[string]any{"city": 5}),
			step("properly", "weather", map[string]any{"city": "Rome"}),
			step("done", "finish", map[string]any{}),
			{"reasoning": "the last call worked", "answer": "21.5 °C in Rome"},
		}, "weather")
		out, err := c.ExecuteProgram(context.Background(), id, map[string]any{"question": "How warm is Rome?"})
		if err != nil {
			t.Fatal(err)
		}
		if r := h.Ran(); r != "weather:Rome" {
			t.Fatalf("the Go tool ran for %q: only the well-formed call may run it", r)
		}
		for i, want := range [][]string{
			{"InvalidArgument", "takes (city: string, units?: string)", "town"},
			{"InvalidArgument", "missing city"},
			{"Arg city is invalid", "5 is not of type 'string'"},
		} {
			o, _ := observation(t, out, i).(string)
			t.Logf("observation_%d (its end): %q", i, tail(o))
			for _, w := range want {
				if !strings.Contains(o, w) {
					t.Fatalf("observation_%d lacks %q: %q", i, w, o)
				}
			}
		}
		if o, _ := observation(t, out, 3).(map[string]any); o["city"] != "Rome" || out["answer"] != "21.5 °C in Rome" {
			t.Fatalf("after the bad calls: %v", out)
		}
	})
}

// A cancel from Go while a Go tool runs: the tool's ctx ends, ExecuteProgram returns
// ErrCancelled, and the agent stops in Python — no further LM step, no further tool (the
// script's next step would call weather) — on both paths; the worker then serves the next run.
func TestReActCancelDuringAGoTool(t *testing.T) {
	h := &agentHost{}
	c, p := agentPool(t, h)
	pid := p.Stats().Workers[0].Pid
	forModes(t, p, func(t *testing.T, mode string) {
		h.mu.Lock()
		h.ExpectSlow()
		h.mu.Unlock()
		id := newAgent(t, c, []map[string]any{
			step("look it up", "slow", map[string]any{"city": "Paris"}),
			step("then the weather", "weather", map[string]any{"city": "Rome"}),
			step("done", "finish", map[string]any{}),
			{"reasoning": "r", "answer": "too late"},
		}, "slow", "weather")
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-h.SlowStarted; cancel() }()
		start := time.Now()
		_, err := c.ExecuteProgram(ctx, id, map[string]any{"question": "Paris?"})
		t.Logf("ExecuteProgram returned after %v: %v", time.Since(start).Round(time.Millisecond), err)
		if !errors.Is(err, mlbridge.ErrCancelled) {
			t.Fatalf("err %v, want ErrCancelled", err)
		}
		select {
		case e := <-h.SlowEnded:
			if !errors.Is(e, context.Canceled) {
				t.Fatalf("the Go tool ended with %v", e)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the Go tool's ctx was not cancelled")
		}
		waitIdle(t, c, start) // a sync run's thread has returned
		if n := len(lmHistory(t, p)); n != 1 {
			t.Fatalf("%d LM calls: the agent went on after the cancel", n)
		}
		if r := h.Ran(); r != "slow:Paris" {
			t.Fatalf("the agent went on after the cancel: %s", r)
		}

		next := newAgent(t, c, []map[string]any{
			step("weather", "weather", map[string]any{"city": "Rome"}),
			step("done", "finish", map[string]any{}),
			{"reasoning": "r", "answer": "21.5 °C"},
		}, "weather")
		if out, err := c.ExecuteProgram(context.Background(), next, map[string]any{"question": "Rome?"}); err != nil || out["answer"] != "21.5 °C" {
			t.Fatalf("the next run: %v %v", out, err)
		}
		if now := p.Stats().Workers[0].Pid; now != pid {
			t.Fatalf("the worker was replaced (pid %d -> %d)", pid, now)
		}
	})
}

// A Go tool that calls back into Python during a ReAct step: ask runs the agent's own program
// from inside its tool call, on the same one-worker pool (the outer run waits in the tool
// meanwhile). With MaxCallbackDepth 1 the nested agent's own tool call would be a second level
// of Go: it is refused with CallbackDepthExceeded, which the nested agent sees as its
// observation and finishes; its answer is the outer agent's observation. Nothing deadlocks.
func TestReActGoToolCallsBackIntoPython(t *testing.T) {
	h := &agentHost{}
	c, p := agentPool(t, h, func(c *mlbridge.PoolConfig) { c.MaxCallbackDepth = 1 })
	forModes(t, p, func(t *testing.T, mode string) {
		h.Forget()
		h.mu.Lock()
		h.depths, h.inner = nil, nil
		h.mu.Unlock()
		h.program = newAgent(t, c, []map[string]any{
			step("ask myself", "ask", map[string]any{"question": "inner"}),    // outer step 0
			step("ask again", "ask", map[string]any{"question": "innermost"}), // nested step 0: refused
			step("enough", "finish", map[string]any{}),                        // nested step 1
			{"reasoning": "could not go deeper", "answer": "inner answer"},    // nested extraction
			step("got it", "finish", map[string]any{}),                        // outer step 1
			{"reasoning": "the sub-agent answered", "answer": "outer answer"}, // outer extraction
		}, "ask")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := c.ExecuteProgram(ctx, h.program, map[string]any{"question": "outer"})
		if err != nil {
			t.Fatal(err)
		}
		h.mu.Lock()
		depths, inner := h.depths, h.inner
		h.mu.Unlock()
		if out["answer"] != "outer answer" || observation(t, out, 0) != "inner answer" {
			t.Fatalf("outer run %v", out)
		}
		if r := h.Ran(); r != "ask:inner" || len(depths) != 1 || depths[0] != 1 {
			t.Fatalf("ask ran for %q at depths %v", r, depths)
		}
		refused, _ := observation(t, inner[0], 0).(string)
		t.Logf("the nested agent saw (its end): %q", tail(refused))
		if !strings.Contains(refused, "CallbackDepthExceeded") {
			t.Fatalf("the nested agent's tool call: %q", refused)
		}
		if n := len(lmHistory(t, p)); n != 6 {
			t.Fatalf("%d LM calls, want 6", n)
		}
	})
}
