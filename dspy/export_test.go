package dspy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/dspy"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// plainDSPy runs script with the project's interpreter: plain DSPy, no mlbridge code.
func plainDSPy(t *testing.T, script string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(testenv.Python(t), append([]string{"-c", script}, args...)...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("plain DSPy: %v\n%s", err, stderr)
	}
	return out
}

// DSPy's LabeledFewShot picks 4 demos (its seeded sample of the 6) and the program is saved
// with Module.save: the file plain DSPy writes.
const saveWithDSPy = `
import sys, dspy
capitals = [("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"), ("Egypt", "Cairo"), ("Peru", "Lima")]
train = [dspy.Example(question=f"capital of {c}?", answer=a).with_inputs("question") for c, a in capitals]
prog = dspy.Predict(dspy.Signature("question -> answer", "Name the capital city, nothing else."))
dspy.LabeledFewShot(k=4).compile(prog, trainset=train).save(sys.argv[1])
`

// Plain DSPy loads a file and answers each of its demos' questions on the follow-examples
// DummyLM (which answers a question only if it is one of the prompt's demos).
const loadWithDSPy = `
import sys, json, dspy
from dspy.utils import DummyLM
prog = dspy.Predict("question -> answer")
prog.load(sys.argv[1])
with dspy.context(lm=DummyLM([], follow_examples=True), adapter=dspy.ChatAdapter()):
    answers = {d["question"]: prog(question=d["question"]).answer for d in prog.demos}
print(json.dumps({"instructions": prog.signature.instructions, "answers": answers}))
`

// A program saved by plain DSPy (program.save) imports with ImportProgram and runs on a
// worker with the saved demos; ExportProgram's JSON is a file plain DSPy's program.load reads,
// with the same demos and instructions.
func TestProgramJSONWithPlainDSPy(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	saved := filepath.Join(dir, "saved.json")
	plainDSPy(t, saveWithDSPy, saved)
	data, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	var state struct {
		Demos []struct {
			Question string `json:"question"`
			Answer   string `json:"answer"`
		} `json:"demos"`
	}
	if err := json.Unmarshal(data, &state); err != nil || len(state.Demos) != 4 {
		t.Fatalf("DSPy saved %s (%v)", data, err)
	}

	c, p := openOn(t, nil)
	t.Cleanup(func() { _ = p.Close() })
	if err := c.ConfigureLM(ctx, followExamples); err != nil {
		t.Fatal(err)
	}
	id, err := c.ImportProgram(ctx, "question -> answer", data)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := c.GetProgramInfo(ctx, id); err != nil || info.Demos != 4 {
		t.Fatalf("imported: %+v %v", info, err)
	}
	for _, d := range state.Demos {
		out, err := c.ExecuteProgram(ctx, id, map[string]any{"question": d.Question})
		if err != nil || out["answer"] != d.Answer {
			t.Fatalf("%s: %v %v", d.Question, out, err)
		}
	}

	exported, err := c.ExportProgram(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "exported.json")
	if err := os.WriteFile(path, exported, 0o600); err != nil {
		t.Fatal(err)
	}
	var loaded struct {
		Instructions string            `json:"instructions"`
		Answers      map[string]string `json:"answers"`
	}
	if err := json.Unmarshal(plainDSPy(t, loadWithDSPy, path), &loaded); err != nil {
		t.Fatal(err)
	}
	t.Logf("plain DSPy loaded the export: %+v", loaded)
	if loaded.Instructions != "Name the capital city, nothing else." || len(loaded.Answers) != 4 {
		t.Fatalf("plain DSPy loaded %+v", loaded)
	}
	for _, d := range state.Demos {
		if loaded.Answers[d.Question] != d.Answer {
			t.Fatalf("plain DSPy answered %q for %q, want %q", loaded.Answers[d.Question], d.Question, d.Answer)
		}
	}
}

// A hostile or damaged state is refused when the program is imported, with
// mlbridge.ErrInvalidArgument: DSPy's Predict.load_state sets every unknown key of a state onto
// the predictor ("forward": "x" would make each call fail later with an untyped error), and a
// state's "lm" would pick another model than the one ConfigureLM set (it is dropped).
func TestImportProgramRefusesHostileState(t *testing.T) {
	ctx := context.Background()
	c, p := openOn(t, nil)
	t.Cleanup(func() { _ = p.Close() })
	if err := c.ConfigureLM(ctx, dspy.LMConfig{Provider: "dummy", Answers: []map[string]any{{"answer": "Paris"}}}); err != nil {
		t.Fatal(err)
	}
	state := func(extra string) []byte {
		return []byte(`{"traces": [], "train": [], "demos": [], "lm": null, ` + extra +
			`"signature": {"instructions": "Answer.", "fields": [{"prefix": "Question:", "description": "q"}, {"prefix": "Answer:", "description": "a"}]}}`)
	}
	for name, bad := range map[string][]byte{
		"forward":   state(`"forward": "boom", `),
		"callbacks": state(`"callbacks": "x", `),
		"demos":     bytes.Replace(state(""), []byte(`"demos": []`), []byte(`"demos": [1, 2]`), 1),
	} {
		if id, err := c.ImportProgram(ctx, "question -> answer", bad); !errors.Is(err, mlbridge.ErrInvalidArgument) {
			t.Errorf("%s: ImportProgram = %q, %v; want ErrInvalidArgument", name, id, err)
		}
	}
	withLM := bytes.Replace(state(""), []byte(`"lm": null`), []byte(`"lm": {"model": "openai/gpt-4o"}`), 1)
	id, err := c.ImportProgram(ctx, "question -> answer", withLM)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.ExecuteProgram(ctx, id, map[string]any{"question": "capital of France?"})
	if err != nil || out["answer"] != "Paris" {
		t.Fatalf("a state naming an LM: %v, %v; want the configured LM's answer", out, err)
	}
}

// JSON nested deeper than Python's recursion limit (Go's json.Valid takes it) is refused with
// ErrInvalidArgument, not an unknown RecursionError.
func TestImportProgramDeeplyNestedState(t *testing.T) {
	ctx := context.Background()
	c, p := openOn(t, nil)
	t.Cleanup(func() { _ = p.Close() })
	deep := `{"a": ` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`
	if id, err := c.ImportProgram(ctx, "question -> answer", []byte(deep)); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("ImportProgram = %q, %v; want ErrInvalidArgument", id, err)
	}
}
