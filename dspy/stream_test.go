package dspy_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"syscall"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/dspy"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

func open(t *testing.T) *dspy.Client {
	t.Helper()
	p, err := mlbridge.OpenPool(context.Background(), mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: dspy.Bridge, Python: testenv.Python(t)}, Size: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return dspy.New(p)
}

// The dummy LM answers in one piece: the stream is the prediction alone, equal to what
// ExecuteProgram returns, also on a worker that had to be given the program first. An unknown
// program fails before anything is streamed.
func TestStreamProgramDummy(t *testing.T) {
	ctx := context.Background()
	c := open(t)
	answer := map[string]any{"answer": "Paris"}
	if err := c.ConfigureLM(ctx, dspy.LMConfig{Provider: "dummy", Answers: []map[string]any{answer, answer}}); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateProgram(ctx, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string]any{"question": "capital of France?"}
	var chunks []dspy.StreamChunk
	for chunk, err := range c.StreamProgram(ctx, id, inputs) {
		if err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, chunk)
	}
	if len(chunks) != 1 || !chunks[0].Final() || !maps.Equal(chunks[0].Prediction, answer) {
		t.Fatalf("chunks %+v", chunks)
	}
	got, err := c.ExecuteProgram(ctx, id, inputs)
	if err != nil || !maps.Equal(got, chunks[0].Prediction) {
		t.Fatalf("execute: %v %v; streamed %v", got, err, chunks[0].Prediction)
	}

	// A worker that lacks the program (the replacement of a killed one) gets its definition
	// before the stream starts.
	p := c.Adapter().(*mlbridge.Pool)
	old := p.Stats().Workers[0].Pid
	_ = syscall.Kill(old, syscall.SIGKILL)
	for {
		chunks = chunks[:0]
		err = nil
		for chunk, e := range c.StreamProgram(ctx, id, inputs) {
			if err = e; err != nil {
				break
			}
			chunks = append(chunks, chunk)
		}
		if !errors.Is(err, mlbridge.ErrWorkerExited) {
			break // else it raced the kill
		}
	}
	if err != nil || len(chunks) != 1 || !maps.Equal(chunks[0].Prediction, answer) || p.Stats().Workers[0].Pid == old {
		t.Fatalf("on a new worker: %+v %v", chunks, err)
	}

	n := 0
	for _, err := range c.StreamProgram(ctx, "prog_nope", inputs) {
		n++
		if !errors.Is(err, mlbridge.ErrNotFound) {
			t.Fatalf("unknown program: %v", err)
		}
	}
	if n != 1 {
		t.Fatalf("unknown program: %d items", n)
	}
}

// The local model streams a text field token by token, then the prediction. Breaking out of
// the loop stops the generation in Python: between just before the break and the first
// piece of the next stream, the model generated only a few tokens (it serves one generation
// at a time, so a generation left running would come first), where the same program runs to
// many more when read to the end. The next calls work.
func TestStreamProgramLocalBreakStopsGeneration(t *testing.T) {
	ctx := context.Background()
	c := open(t)
	if err := c.ConfigureLM(ctx, dspy.LMConfig{MaxTokens: 200}); err != nil {
		t.Fatal(err)
	}
	// The small model copies the text (about 100 tokens): long enough to tell a stop.
	id, err := c.CreateProgram(ctx, "text -> rewritten", dspy.WithInstructions("Repeat the text word for word."))
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string]any{"text": "The sea covers most of the planet. Sailors crossed it in wooden ships, guided " +
		"by stars, currents and the shapes of coasts. Harbors grew into cities, lighthouses warned of rocks, and " +
		"fishermen learned the seasons of every bay and river mouth along the shore."}
	tokens := func() int64 {
		t.Helper()
		d, err := mlbridge.Decode[struct {
			Tokens int64 `msgpack:"tokens_generated"`
		}](c.Adapter().Call(ctx, "describe", map[string]any{"id": "lm"}, mlbridge.Uses("lm")))
		if err != nil {
			t.Fatal(err)
		}
		return d.Tokens
	}

	// Read to the end: pieces of the one field, then the prediction they add up to.
	start := tokens()
	var text strings.Builder
	pieces := 0
	var prediction map[string]any
	for chunk, err := range c.StreamProgram(ctx, id, inputs) {
		if err != nil {
			t.Fatal(err)
		}
		if prediction != nil {
			t.Fatalf("a chunk after the prediction: %+v", chunk)
		}
		if chunk.Final() {
			prediction = chunk.Prediction
			continue
		}
		if chunk.Field != "rewritten" || chunk.Text == "" {
			t.Fatalf("piece %+v", chunk)
		}
		pieces++
		text.WriteString(chunk.Text)
	}
	reference := tokens() - start
	if pieces < 2 || prediction == nil || prediction["rewritten"] != text.String() {
		t.Fatalf("%d pieces %q, prediction %v", pieces, text.String(), prediction)
	}
	if reference < 40 {
		t.Fatalf("the full run took %d tokens: too short to tell a stop", reference)
	}

	// Break after two pieces.
	var atBreak int64
	seen := 0
	for chunk, err := range c.StreamProgram(ctx, id, inputs) {
		if err != nil {
			t.Fatal(err)
		}
		if chunk.Final() {
			t.Fatal("the stream ended before the break")
		}
		if seen++; seen == 2 {
			atBreak = tokens()
			break
		}
	}

	// The next stream's first piece, then the count.
	var passed int64 = -1
	for chunk, err := range c.StreamProgram(ctx, id, inputs) {
		if err != nil {
			t.Fatal(err)
		}
		if chunk.Final() || chunk.Text == "" {
			t.Fatalf("first chunk %+v", chunk)
		}
		passed = tokens() - atBreak
		break
	}
	if passed < 0 || passed > 20 {
		t.Fatalf("%d tokens between the break and the next stream's first piece (a full run: %d)", passed, reference)
	}
	out, err := c.ExecuteProgram(ctx, id, map[string]any{"text": "One. Two."})
	if _, ok := out["rewritten"].(string); err != nil || !ok {
		t.Fatalf("execute after the breaks: %v %v", out, err)
	}
}
