package langchain_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/langchain"
	"github.com/mlbridge/mlbridge/store"
)

func open(t *testing.T, workers int, opts ...func(*mlbridge.PoolConfig)) (*langchain.Client, *mlbridge.Pool) {
	t.Helper()
	cfg := mlbridge.PoolConfig{Config: mlbridge.Config{Bridge: langchain.Bridge, Python: testenv.Python(t)}, Size: workers}
	for _, o := range opts {
		o(&cfg)
	}
	p, err := mlbridge.OpenPool(context.Background(), cfg)
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

// The bridge option handler_modes (what a registry's `options:` sends) switches the LangChain
// ops on every worker of the pool — invoke, stream and chat to their sync implementations,
// execute to its async one — and every answer, errors included, stays what the defaults gave:
// neither the wire nor this package changes. (A set_handler_mode call would reach one worker.)
func TestHandlerModesOptionKeepsTheAnswers(t *testing.T) {
	ctx := context.Background()
	c, p := open(t, 2, func(cfg *mlbridge.PoolConfig) { cfg.HealthInterval = 50 * time.Millisecond })
	for id, answer := range map[string]string{"fake": "the sea is wide", "facts": `{"sea": "wide", "depth": 3}`} {
		if err := c.CreateModel(ctx, id, langchain.ModelConfig{Provider: "fake", Responses: []string{answer}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CreateChain(ctx, "poem", langchain.ChainConfig{Model: "fake", Template: "A line about {topic}."}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateChain(ctx, "json", langchain.ChainConfig{Model: "facts", Template: "{q}", Parser: "json"}); err != nil {
		t.Fatal(err)
	}

	show := func(v any, err error) string {
		if err != nil {
			return "error: " + err.Error()
		}
		return fmt.Sprint(v)
	}
	value := func(r mlbridge.Result, err error) string {
		if err != nil {
			return show(nil, err)
		}
		return show(r.Value())
	}
	answers := func() []string {
		var out []string
		for _, call := range []struct {
			id     string
			inputs map[string]any
		}{{"poem", map[string]any{"topic": "the sea"}}, {"json", map[string]any{"q": "x"}}, {"poem", map[string]any{}}} {
			out = append(out, value(c.Invoke(ctx, call.id, call.inputs)), value(p.Execute(ctx, call.id, call.inputs)))
			var chunks []string
			var err error
			for s, e := range c.Stream(ctx, call.id, call.inputs) {
				if err = e; err != nil {
					break
				}
				chunks = append(chunks, s)
			}
			out = append(out, show(strings.Join(chunks, "|"), err))
		}
		// a model is not executable; "poem" is a chain, not a model to chat with
		out = append(out, value(p.Execute(ctx, "fake", nil)))
		for _, model := range []string{"fake", "poem"} {
			out = append(out, show(c.Chat(model, "Be brief.").Send(ctx, "hi")))
		}
		return out
	}

	defaults := map[string]mlbridge.HandlerKind{"invoke": mlbridge.KindAsync, "stream": mlbridge.KindAsyncGen,
		"chat": mlbridge.KindAsync, "execute": mlbridge.KindSync}
	waitModes(t, p, defaults)
	want := answers()
	if len(want) != 12 || want[0] != "the sea is wide" || want[2] != "the| |sea| |is| |wide" || want[4] != "map[depth:3 sea:wide]" ||
		!strings.Contains(want[6], "invalid_argument") || !strings.Contains(want[11], "not_found") {
		t.Fatalf("answers in the default modes: %q", want)
	}

	switched := map[string]mlbridge.HandlerKind{"invoke": mlbridge.KindSync, "stream": mlbridge.KindSyncGen,
		"chat": mlbridge.KindSync, "execute": mlbridge.KindAsync}
	if _, err := p.Create(ctx, store.Definition{ID: "bridge_options", Kind: "options", Global: true,
		Spec: map[string]any{"handler_modes": switched}}); err != nil {
		t.Fatal(err)
	}
	waitModes(t, p, switched)
	for i, got := range answers() {
		if got != want[i] {
			t.Errorf("answer %d: %q in the switched modes, %q in the defaults", i, got, want[i])
		}
	}
}

// waitModes waits until every worker's health check reports the modes (an op whose workers
// disagree is "mixed").
func waitModes(t *testing.T, p *mlbridge.Pool, want map[string]mlbridge.HandlerKind) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		modes := p.Stats().Handlers.Modes
		got := maps.Clone(want)
		for op := range got {
			got[op] = modes[op]
		}
		if maps.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("modes %v, want %v", modes, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
