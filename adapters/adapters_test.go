package adapters_test

import (
	"context"
	"errors"
	"slices"
	"syscall"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/adapters"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

func dummyLM(n int) adapters.LMConfig {
	answers := make([]map[string]any, n)
	for i := range answers {
		answers[i] = map[string]any{"reasoning": "because", "answer": "Paris", "confidence": "0.5"}
	}
	return adapters.LMConfig{Provider: "dummy", Answers: answers}
}

func TestPythonPoolV2LegacyCalls(t *testing.T) {
	ctx := context.Background()
	pool, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Workers: 2, Python: testenv.Python(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := pool.ConfigureLM(ctx, dummyLM(100)); err != nil {
		t.Fatal(err)
	}
	id, err := pool.CreateProgram(ctx, "question -> answer, confidence: float", adapters.WithModule("ChainOfThought"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := pool.ExecuteProgram(ctx, id, map[string]any{"question": "capital of France?"})
	if err != nil || out["answer"] != "Paris" || out["confidence"] != 0.5 {
		t.Fatalf("execute: %v %v", out, err)
	}
	info, err := pool.GetProgramInfo(ctx, id)
	if err != nil || info.Module != "ChainOfThought" || len(info.Outputs) != 2 || info.Outputs[1].Type != "float" {
		t.Fatalf("info: %+v %v", info, err)
	}
	ids, err := pool.ListPrograms(ctx)
	if err != nil || !slices.Equal(ids, []string{id}) {
		t.Fatalf("list: %v %v", ids, err)
	}

	// A program executes after every worker that built it was killed.
	for _, w := range pool.GetStats().Workers {
		_ = syscall.Kill(w.Pid, syscall.SIGKILL)
	}
	for {
		out, err = pool.ExecuteProgram(ctx, id, map[string]any{"question": "again?"})
		if !errors.Is(err, mlbridge.ErrWorkerExited) {
			break // a call that raced the kill may see the death; the next one must not
		}
	}
	if err != nil || out["answer"] != "Paris" {
		t.Fatalf("after the workers were killed: %v %v", out, err)
	}

	if err := pool.DeleteProgram(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.ExecuteProgram(ctx, id, map[string]any{"question": "q"}); !errors.Is(err, mlbridge.ErrNotFound) {
		t.Fatalf("deleted program: %v", err)
	}
}

func TestLegacyBadInput(t *testing.T) {
	ctx := context.Background()
	port, err := adapters.NewPythonPort(ctx, adapters.Options{Python: testenv.Python(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	// A bad signature fails in Go, before anything reaches Python — never a fallback.
	var se *mlbridge.SignatureError
	if _, err := port.CreateProgram(ctx, "question answer"); !errors.As(err, &se) {
		t.Fatalf("bad signature: %v", err)
	}
	if _, err := port.CreateProgram(ctx, "q -> a", adapters.WithModule("NoSuchModule")); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("bad module: %v", err)
	}
	if ids, _ := port.ListPrograms(ctx); len(ids) != 0 {
		t.Fatalf("a failed CreateProgram left %v behind", ids)
	}
	if _, err := port.ExecuteProgram(ctx, "prog_nope", nil); !errors.Is(err, mlbridge.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	id, err := port.CreateProgram(ctx, "context: list[str], question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	// No LM configured yet: a configuration error, not a hang or a crash.
	if _, err := port.ExecuteProgram(ctx, id, map[string]any{"context": []string{"x"}, "question": "q"}); !errors.Is(err, mlbridge.ErrInvalidConfiguration) {
		t.Fatalf("no LM: %v", err)
	}
	if err := port.ConfigureLM(ctx, dummyLM(10)); err != nil {
		t.Fatal(err)
	}
	for _, inputs := range []map[string]any{
		{"question": "q"},                          // missing input
		{"context": "not a list", "question": "q"}, // wrong type
	} {
		if _, err := port.ExecuteProgram(ctx, id, inputs); !errors.Is(err, mlbridge.ErrInvalidArgument) {
			t.Fatalf("inputs %v: %v", inputs, err)
		}
	}
	if err := port.HealthCheck(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPackageLevelDefault(t *testing.T) {
	t.Setenv("MLBRIDGE_PYTHON", testenv.Python(t))
	ctx := context.Background()
	defer adapters.CloseDefault()
	if st := adapters.GetStats(); len(st.Workers) != 0 {
		t.Fatalf("GetStats before the default pool started: %+v", st)
	}
	if err := adapters.ConfigureLM(ctx, dummyLM(5)); err != nil {
		t.Fatal(err)
	}
	id, err := adapters.CreateProgram(ctx, "question -> answer, confidence: float", adapters.WithID("billing.summary-1"))
	if err != nil || id != "billing.summary-1" {
		t.Fatalf("create with WithID: %q %v", id, err)
	}
	if _, err := adapters.CreateProgram(ctx, "question -> answer", adapters.WithID(id)); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("an id in use: %v", err)
	}
	out, err := adapters.ExecuteProgram(ctx, id, map[string]any{"question": "q"})
	if err != nil || out["answer"] != "Paris" {
		t.Fatalf("%v %v", out, err)
	}
	info, err := adapters.GetProgramInfo(ctx, id)
	if err != nil || info.ID != id || info.Signature != "question -> answer, confidence: float" {
		t.Fatalf("GetProgramInfo: %+v %v", info, err)
	}
	if _, err := adapters.GetProgramInfo(ctx, "prog_nope"); !errors.Is(err, mlbridge.ErrNotFound) {
		t.Fatalf("GetProgramInfo of an unknown id: %v", err)
	}
	if err := adapters.HealthCheck(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := adapters.Default(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := adapters.GetStats(); len(st.Workers) != len(p.GetStats().Workers) || len(st.Workers) == 0 {
		t.Fatalf("GetStats: %+v", st)
	}
}
