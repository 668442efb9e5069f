// The demo of examples/dspy-local written against the legacy DSPy API (adapters.PythonPoolV2),
// as code from before the multi-framework API calls it — kept to show that such code still
// runs unchanged, and as the input of `mlbridge migrate` (docs/MIGRATION.md). New code: see
// examples/dspy-local.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/adapters"
)

var questions = []string{
	"What is the capital of France?",
	"What color is the sky on a clear day?",
	"How many legs does a spider have?",
	"What do bees make?",
	"Which planet do we live on?",
	"What is frozen water called?",
}

func main() {
	workers := flag.Int("workers", 2, "Python worker processes")
	maxTokens := flag.Int("max-tokens", 160, "tokens each answer may use")
	flag.Parse()
	ctx := context.Background()
	start := time.Now()

	fmt.Printf("mlbridge: DSPy ChainOfThought on SmolLM2-135M-Instruct (llama.cpp, offline, no key)\n\n")
	fmt.Printf("starting %d workers (DSPy is imported once, in a preloaded interpreter) ...\n", *workers)
	stop := ticker(start)
	// The legacy API, as existing users call it; its deprecation notices are off here.
	pool, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Workers: *workers, Logger: progressLogger(start), Phase: adapters.PhaseOff})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	fmt.Printf("loading the model on every worker ...\n")
	if err := pool.ConfigureLM(ctx, adapters.LMConfig{Provider: "local", MaxTokens: *maxTokens}); err != nil {
		log.Fatal(err)
	}
	id, err := pool.CreateProgram(ctx, "question: str -> answer: str", adapters.WithModule("ChainOfThought"),
		adapters.WithInstructions("Answer the question in a few words."))
	if err != nil {
		log.Fatal(err)
	}
	stop()
	fmt.Printf("ready after %s; program %s\n\n", since(start), id)

	fmt.Printf("asking %d questions concurrently ...\n\n", len(questions))
	type answer struct {
		out  map[string]any
		err  error
		took time.Duration
	}
	answers := make([]answer, len(questions))
	asked := time.Now()
	var wg sync.WaitGroup
	for i, q := range questions {
		wg.Go(func() {
			t := time.Now()
			out, err := pool.ExecuteProgram(ctx, id, map[string]any{"question": q})
			answers[i] = answer{out, err, time.Since(t)}
		})
	}
	wg.Wait()
	wall := time.Since(asked)

	var sum time.Duration
	failed := 0
	for i, a := range answers {
		sum += a.took
		fmt.Printf("Q: %s   [%s]\n", questions[i], a.took.Round(time.Millisecond))
		if a.err != nil {
			failed++
			fmt.Printf("   error: %v\n\n", a.err)
			continue
		}
		fmt.Printf("   reasoning: %s\n   answer:    %s\n\n", oneLine(a.out["reasoning"]), oneLine(a.out["answer"]))
	}
	st := pool.GetStats()
	fmt.Printf("%d questions in %s on %d workers (calls took %s in sum); %d failed; %d calls served\n",
		len(questions), wall.Round(time.Millisecond), st.Size, sum.Round(time.Millisecond), failed, served(st.Workers))
	if failed > 0 {
		os.Exit(1)
	}
}

// progressLogger prints the pool's own progress events (worker ready, model applied) as they
// happen, without timestamps or levels; warnings and errors are printed too.
func progressLogger(start time.Time) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey:
				return slog.String("at", since(start))
			case slog.LevelKey:
				if a.Value.Any().(slog.Level) == slog.LevelInfo {
					return slog.Attr{}
				}
			case slog.MessageKey:
				return slog.String(a.Key, strings.TrimPrefix(a.Value.String(), "mlbridge: "))
			}
			return a
		},
	}))
}

// ticker prints the elapsed time every two seconds until stopped, so a slow first start
// (imports, model load) never looks like a hang.
func ticker(start time.Time) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fmt.Printf("  ... %s\n", since(start))
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

func served(ws []mlbridge.WorkerStats) uint64 {
	var n uint64
	for _, w := range ws {
		n += w.Served
	}
	return n
}

func oneLine(v any) string {
	if v == nil {
		return ""
	}
	s := strings.Join(strings.Fields(fmt.Sprint(v)), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

func since(t time.Time) string { return time.Since(t).Round(10 * time.Millisecond).String() }
