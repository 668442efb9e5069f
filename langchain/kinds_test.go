package langchain_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/langchain"
)

// A model and a chain share one id space: CreateModel over a chain's id replaced the chain
// (it was gone), and CreateChain over a model's id replaced that model. Each is refused with
// ErrInvalidArgument and the definition there stays; redefining one of the same kind is fine.
func TestCreateOverAnotherKind(t *testing.T) {
	ctx := context.Background()
	c, _ := open(t, 1)
	fake := langchain.ModelConfig{Provider: "fake", Responses: []string{"the sea is wide"}}
	if err := c.CreateModel(ctx, "fake", fake); err != nil {
		t.Fatal(err)
	}
	chain := langchain.ChainConfig{Model: "fake", Template: "a poem about {topic}"}
	if err := c.CreateChain(ctx, "poem", chain); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateModel(ctx, "poem", fake); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Errorf("CreateModel over a chain: %v; want ErrInvalidArgument", err)
	}
	other := langchain.ChainConfig{Model: "poem", Template: "{x}"}
	if err := c.CreateChain(ctx, "fake", other); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Errorf("CreateChain over a model: %v; want ErrInvalidArgument", err)
	}
	got, err := mlbridge.Decode[string](c.Invoke(ctx, "poem", map[string]any{"topic": "the sea"}))
	if err != nil || got != "the sea is wide" {
		t.Fatalf("the chain afterwards: %q, %v", got, err)
	}
	if err := c.CreateModel(ctx, "fake", fake); err != nil {
		t.Errorf("redefining a model: %v", err)
	}
	if err := c.CreateChain(ctx, "poem", chain); err != nil {
		t.Errorf("redefining a chain: %v", err)
	}
}
