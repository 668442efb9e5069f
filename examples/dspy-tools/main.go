// A DSPy ReAct agent whose tool is a Go function, on the embedded local LM
// (SmolLM2-135M-Instruct, run by llama.cpp inside the worker), offline.
//
// The Go side registers country_facts with mlbridge.Func; DSPy's ReAct sees it as a tool with
// the name, description and argument schema Go gave it, and each call the agent makes runs
// the Go function (printed as "[Go] ..."). The agent's trajectory is printed step by step.
//
// Be honest about the model: 135M parameters is far too small for an agent. ReAct asks for
// its tool arguments as a free-form JSON object, so DSPy's JSON adapter cannot give llama.cpp
// a strict schema, and the model may write a tool name that is not one or run out of tokens
// inside the JSON: DSPy then ends the run with a parse error (mlbridge.ErrModel), which this
// example prints and explains instead of failing. When a step does parse, the model may pass
// the wrong arguments (refused by the Go function: the error becomes the step's observation,
// as DSPy records any failing tool), or answer without using what the tool returned. The
// plumbing is what this shows (main_test.go scripts a correct agent with DSPy's DummyLM); for
// answers you can rely on, point LMConfig at a real model (Provider "openai_compatible") and
// keep everything else. README.md says what we saw.
//
//	go run ./examples/dspy-tools -question "What is the capital of Kenya?" -max-iters 3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/dspy"
)

// countryIn is the tool's argument: its schema (from the fields and the desc tag) is what the
// agent is shown.
type countryIn struct {
	Country string `json:"country" desc:"the country's name in English, e.g. Kenya"`
}

type countryFacts struct {
	Country    string `json:"country"`
	Capital    string `json:"capital"`
	Population int    `json:"population"`
	Currency   string `json:"currency"`
}

// facts stands for what a Go service owns: its database, its APIs.
var facts = map[string]countryFacts{
	"kenya":  {"Kenya", "Nairobi", 55_100_000, "Kenyan shilling"},
	"peru":   {"Peru", "Lima", 34_350_000, "sol"},
	"japan":  {"Japan", "Tokyo", 124_500_000, "yen"},
	"france": {"France", "Paris", 68_400_000, "euro"},
}

type options struct {
	question string
	maxIters int
	lm       dspy.LMConfig
	python   string // the workers' interpreter; empty: $MLBRIDGE_PYTHON, else python3
}

// outcome is what a run did, for the summary (and the example's test).
type outcome struct {
	answer    string
	toolCalls int64 // times the Go function ran
	steps     int   // tool steps in the trajectory, finish included
	toolSteps int   // steps naming country_facts: each should have run the Go function once
	failed    bool  // the model wrote a step that did not parse (mlbridge.ErrModel)
}

func main() {
	question := flag.String("question", "What is the capital of Kenya?", "the question for the agent")
	maxIters := flag.Int("max-iters", 3, "ReAct steps at most (each is one LM call)")
	maxTokens := flag.Int("max-tokens", 192, "tokens each LM call may use")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	o := options{question: *question, maxIters: *maxIters, lm: dspy.LMConfig{Provider: "local", MaxTokens: *maxTokens}}
	if _, err := run(ctx, os.Stdout, o); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer, o options) (outcome, error) {
	var res outcome
	countryTool := mlbridge.Func("country_facts", func(ctx context.Context, in countryIn) (countryFacts, error) {
		atomic.AddInt64(&res.toolCalls, 1)
		fmt.Fprintf(out, "  [Go] country_facts(country=%q)\n", in.Country)
		f, ok := facts[strings.ToLower(strings.TrimSpace(in.Country))]
		if !ok {
			return countryFacts{}, fmt.Errorf("%w: no facts about %q (known: Kenya, Peru, Japan, France)", mlbridge.ErrNotFound, in.Country)
		}
		return f, nil
	}, mlbridge.Describe("Facts about a country from our own database: its capital, population and currency."))

	fmt.Fprintf(out, "mlbridge: DSPy ReAct with a Go tool, on %s\n\n", lmName(o.lm))
	pool, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: dspy.Bridge, Python: o.python, HostFuncs: []mlbridge.HostFunc{countryTool}},
		Size:   1, CallTimeout: 3 * time.Minute,
	})
	if err != nil {
		return res, err
	}
	defer pool.Close()
	d := dspy.New(pool)
	if err := d.ConfigureLM(ctx, o.lm); err != nil {
		return res, err
	}
	id, err := d.CreateProgram(ctx, "question -> answer", dspy.WithModule("ReAct"),
		dspy.WithTools("country_facts"), dspy.WithMaxIters(o.maxIters),
		dspy.WithInstructions("Answer the question. Use country_facts to look up facts about a country."))
	if err != nil {
		return res, err
	}

	fmt.Fprintf(out, "Q: %s\n", o.question)
	start := time.Now()
	got, err := d.ExecuteProgram(ctx, id, map[string]any{"question": o.question})
	if errors.Is(err, mlbridge.ErrModel) {
		// The model wrote a step DSPy cannot parse (a tool name that is not one, a cut-off
		// JSON): DSPy's ReAct ends the run with it. Expected of a 135M model: say so.
		res.failed = true
		first, _, _ := strings.Cut(err.Error(), "\n")
		fmt.Fprintf(out, "\nthe agent failed after %s: %s\n", time.Since(start).Round(time.Millisecond), first)
		fmt.Fprintf(out, "(the model's step did not parse; a 135M model often fails this way. The Go tool ran %d time(s).)\n", res.toolCalls)
		return res, nil
	}
	if err != nil {
		return res, err
	}
	res.answer = fmt.Sprint(got["answer"])
	traj, _ := got["trajectory"].(map[string]any)
	res.steps, res.toolSteps = printTrajectory(out, traj)
	fmt.Fprintf(out, "\nA: %s   [%s]\n", oneLine(got["answer"]), time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(out, "\nthe Go tool ran %d time(s) in %d step(s)", res.toolCalls, res.steps)
	if res.toolCalls == 0 {
		fmt.Fprintf(out, " — the model answered without it (a 135M model often does)")
	}
	fmt.Fprintln(out)
	return res, nil
}

// printTrajectory prints ReAct's steps (thought_i, tool_name_i, tool_args_i, observation_i)
// in order and returns how many there were, and how many named the Go tool.
func printTrajectory(out io.Writer, traj map[string]any) (steps, toolSteps int) {
	var idx []int
	for k, v := range traj {
		var i int
		if _, err := fmt.Sscanf(k, "tool_name_%d", &i); err == nil {
			idx = append(idx, i)
			if v == "country_facts" {
				toolSteps++
			}
		}
	}
	slices.Sort(idx)
	for _, i := range idx {
		at := func(key string) any { return traj[fmt.Sprintf("%s_%d", key, i)] }
		fmt.Fprintf(out, "\nstep %d\n  thought:     %s\n  tool:        %v %s\n  observation: %s\n",
			i+1, oneLine(at("thought")), at("tool_name"), oneLine(at("tool_args")), oneLine(at("observation")))
	}
	return len(idx), toolSteps
}

func lmName(lm dspy.LMConfig) string {
	if lm.Provider == "" || lm.Provider == "local" {
		return "SmolLM2-135M-Instruct (llama.cpp, offline, no key)"
	}
	return lm.Provider + " LM"
}

func oneLine(v any) string {
	if v == nil {
		return ""
	}
	s := strings.Join(strings.Fields(fmt.Sprint(v)), " ")
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}
