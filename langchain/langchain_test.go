package langchain_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/langchain"
)

func open(t *testing.T, workers int) (*langchain.Client, *mlbridge.Pool) {
	t.Helper()
	p, err := mlbridge.OpenPool(context.Background(), mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: langchain.Bridge, Python: testenv.Python(t)}, Size: workers,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return langchain.New(p), p
}

// Chains built from host-owned definitions (the model a chain requires is built first on any
// worker), invoked and streamed; a chain still runs after its worker was killed.
func TestChains(t *testing.T) {
	ctx := context.Background()
	c, p := open(t, 1)
	if err := c.CreateModel(ctx, "fake", langchain.ModelConfig{Provider: "fake", Responses: []string{"the sea is wide and deep"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateChain(ctx, "poem", langchain.ChainConfig{Model: "fake", Messages: []langchain.Message{
		{Role: "system", Content: "You are a poet."}, {Role: "human", Content: "A line about {topic}."},
	}}); err != nil {
		t.Fatal(err)
	}
	got, err := mlbridge.Decode[string](c.Invoke(ctx, "poem", map[string]any{"topic": "the sea"}))
	if err != nil || got != "the sea is wide and deep" {
		t.Fatalf("invoke: %q %v", got, err)
	}
	var chunks []string
	for s, err := range c.Stream(ctx, "poem", map[string]any{"topic": "the sea"}) {
		if err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, s)
	}
	if len(chunks) < 2 || strings.Join(chunks, "") != "the sea is wide and deep" {
		t.Fatalf("stream: %q", chunks)
	}
	if _, err := c.Invoke(ctx, "poem", map[string]any{}); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("missing variable: %v", err)
	}
	if err := c.CreateChain(ctx, "orphan", langchain.ChainConfig{Model: "nope", Template: "{x}"}); !errors.Is(err, mlbridge.ErrNotFound) {
		t.Fatalf("chain on an undefined model: %v", err)
	}
	if err := c.CreateChain(ctx, "bad", langchain.ChainConfig{Model: "fake", Template: "{x}", Parser: "xml"}); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("bad parser: %v", err)
	}

	old := p.Stats().Workers[0].Pid
	_ = syscall.Kill(old, syscall.SIGKILL)
	for {
		got, err = mlbridge.Decode[string](c.Invoke(ctx, "poem", map[string]any{"topic": "rain"}))
		if errors.Is(err, mlbridge.ErrWorkerExited) {
			continue // raced the kill
		}
		break
	}
	if err != nil || got == "" || p.Stats().Workers[0].Pid == old {
		t.Fatalf("after the worker was killed: %q %v", got, err)
	}
}

// A chat session keeps its history on the host: each turn sends it all, and a failed turn
// leaves it unchanged.
func TestChatSession(t *testing.T) {
	ctx := context.Background()
	c, _ := open(t, 2)
	// Each worker builds its own fake model, so one answer for every turn: turns may land on
	// either worker.
	if err := c.CreateModel(ctx, "fake", langchain.ModelConfig{Provider: "fake", Responses: []string{"noted"}}); err != nil {
		t.Fatal(err)
	}
	s := c.Chat("fake", "Be brief.")
	for _, turn := range []struct{ say, want string }{{"hi", "noted"}, {"how are you?", "noted"}} {
		got, err := s.Send(ctx, turn.say)
		if err != nil || got != turn.want {
			t.Fatalf("%q: %q %v", turn.say, got, err)
		}
	}
	if len(s.History) != 5 || s.History[0].Role != "system" || s.History[3].Content != "how are you?" || s.History[4].Role != "assistant" {
		t.Fatalf("history %+v", s.History)
	}
	bad := c.Chat("no-such-model", "")
	if _, err := bad.Send(ctx, "hi"); !errors.Is(err, mlbridge.ErrNotFound) || len(bad.History) != 0 {
		t.Fatalf("failed turn: %v, history %+v", err, bad.History)
	}
}

// The local SmolLM2 model as a LangChain chat model: a streamed chain yields several chunks.
// Structure only, never wording.
func TestLocalModelStreams(t *testing.T) {
	ctx := context.Background()
	c, _ := open(t, 1)
	if err := c.CreateModel(ctx, "smol", langchain.ModelConfig{Provider: "local", MaxTokens: 24}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateChain(ctx, "line", langchain.ChainConfig{Model: "smol", Template: "Write one short sentence about {topic}."}); err != nil {
		t.Fatal(err)
	}
	n, text := 0, ""
	for s, err := range c.Stream(ctx, "line", map[string]any{"topic": "rain"}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		text += s
	}
	if n < 2 || strings.TrimSpace(text) == "" {
		t.Fatalf("%d chunks: %q", n, text)
	}
}
