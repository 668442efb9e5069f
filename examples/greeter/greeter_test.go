package greeter_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/examples/greeter"
)

// The bridge's workers find its Python module through PYTHONPATH; the interpreter is
// $MLBRIDGE_PYTHON or the usual discovery (see mlbridge.Config.Python).
func open(t *testing.T) *greeter.Client {
	t.Helper()
	dir, err := filepath.Abs("python")
	if err != nil {
		t.Fatal(err)
	}
	p, err := mlbridge.OpenPool(context.Background(), mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: greeter.Bridge, Python: os.Getenv("MLBRIDGE_PYTHON"), Env: []string{"PYTHONPATH=" + dir}},
		Size:   1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return greeter.New(p)
}

func TestClient(t *testing.T) {
	ctx := context.Background()
	c := open(t)
	if p, err := c.Predict(ctx, "hello"); err != nil || p != (greeter.Prediction{Label: "short", Length: 5}) {
		t.Fatalf("predict: %+v %v", p, err)
	}
	if s, err := c.Generate(ctx, "abc"); err != nil || s != "cba" {
		t.Fatalf("generate: %q %v", s, err)
	}
	var words []string
	for w, err := range c.StreamWords(ctx, "one two three") {
		if err != nil {
			t.Fatal(err)
		}
		words = append(words, w)
	}
	if len(words) != 3 || words[2] != "three" {
		t.Fatalf("stream: %v", words)
	}
	id, err := c.CreateModel(ctx, "m1", "x-")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := c.RunModel(ctx, id, "a rather long piece of text"); err != nil || p.Label != "x-long" {
		t.Fatalf("model: %+v %v", p, err)
	}
	if _, err := c.CreateModel(ctx, "bad", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RunModel(ctx, "nope", "x"); !errors.Is(err, mlbridge.ErrNotFound) {
		t.Fatalf("unknown model: %v", err)
	}
}
