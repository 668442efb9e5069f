// Three frameworks through one registry (mlbridge.yaml at the repository root), offline:
// a scikit-learn classifier trained on the iris dataset, a LangChain chain and a DSPy program,
// both on the local SmolLM2 model. Each bridge starts on first use.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/dspy"
	"github.com/mlbridge/mlbridge/langchain"
	"github.com/mlbridge/mlbridge/sklearn"
)

func main() {
	config := flag.String("config", "mlbridge.yaml", "registry configuration")
	flag.Parse()
	ctx := context.Background()
	reg, err := mlbridge.OpenRegistry(*config, mlbridge.RegistryOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()

	step("scikit-learn", func() error { return classify(ctx, reg) })
	step("LangChain", func() error { return chain(ctx, reg) })
	step("DSPy", func() error { return program(ctx, reg) })
}

func step(name string, f func() error) {
	t := time.Now()
	fmt.Printf("== %s\n", name)
	if err := f(); err != nil {
		log.Fatalf("%s: %v", name, err)
	}
	fmt.Printf("   (%s, including the bridge's start)\n\n", time.Since(t).Round(time.Millisecond))
}

func classify(ctx context.Context, reg *mlbridge.Registry) error {
	a, err := reg.Adapter(ctx, "sklearn")
	if err != nil {
		return err
	}
	sk := sklearn.New(a)
	if err := sk.CreateModel(ctx, "iris", sklearn.Estimator{Name: "StandardScaler"},
		sklearn.Estimator{Name: "LogisticRegression", Params: map[string]any{"max_iter": 500}}); err != nil {
		return err
	}
	fit, err := sk.FitDataset(ctx, "iris", "iris")
	if err != nil {
		return err
	}
	x, err := mlbridge.Float64Array([]float64{5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3}, 2, 4)
	if err != nil {
		return err
	}
	pred, err := sk.Predict(ctx, "iris", x)
	if err != nil {
		return err
	}
	labels, err := pred.Int64s()
	if err != nil {
		return err
	}
	fmt.Printf("   trained on %d samples (train accuracy %.3f, state %d bytes kept by the host)\n",
		fit.Samples, deref(fit.TrainScore), len(fit.State))
	fmt.Printf("   two flowers classified as %v\n", labels)
	return nil
}

func chain(ctx context.Context, reg *mlbridge.Registry) error {
	a, err := reg.Adapter(ctx, "langchain")
	if err != nil {
		return err
	}
	lc := langchain.New(a)
	if err := lc.CreateModel(ctx, "smol", langchain.ModelConfig{Provider: "local", MaxTokens: 48}); err != nil {
		return err
	}
	if err := lc.CreateChain(ctx, "haiku", langchain.ChainConfig{Model: "smol", Messages: []langchain.Message{
		{Role: "system", Content: "You are a concise poet."},
		{Role: "human", Content: "Write one short line about {topic}."},
	}}); err != nil {
		return err
	}
	fmt.Print("   streamed: ")
	for chunk, err := range lc.Stream(ctx, "haiku", map[string]any{"topic": "the sea"}) {
		if err != nil {
			return err
		}
		fmt.Print(chunk)
	}
	fmt.Println()
	return nil
}

func program(ctx context.Context, reg *mlbridge.Registry) error {
	a, err := reg.Adapter(ctx, "dspy")
	if err != nil {
		return err
	}
	d := dspy.New(a)
	if err := d.ConfigureLM(ctx, dspy.LMConfig{MaxTokens: 96}); err != nil {
		return err
	}
	id, err := d.CreateProgram(ctx, "question: str -> answer: str", dspy.WithModule("ChainOfThought"))
	if err != nil {
		return err
	}
	out, err := d.ExecuteProgram(ctx, id, map[string]any{"question": "What is the capital of France?"})
	if err != nil {
		return err
	}
	fmt.Printf("   answer: %v\n   reasoning: %v\n", out["answer"], out["reasoning"])
	return nil
}

func deref(f *float64) float64 {
	if f == nil {
		return 0
	}
	return *f
}
