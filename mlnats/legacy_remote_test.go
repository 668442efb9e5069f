//lint:file-ignore SA1019 this file runs the deprecated legacy API over a Remote on purpose

package mlnats_test

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/mlbridge/mlbridge/adapters"
	"github.com/mlbridge/mlbridge/dspy"
)

// TestLegacyAdaptersOverRemote: the legacy API runs on any Adapter through
// adapters.Options.Adapter, so PythonPoolV2, PythonPort and the package-level functions
// (through SetDefault) all run over a Remote.
func TestLegacyAdaptersOverRemote(t *testing.T) {
	e := embedded(t)
	r, _ := serveBridge(t, e, "dspy", dspy.Bridge)
	ctx := context.Background()
	legacy, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Adapter: r, Phase: adapters.PhaseOff})
	if err != nil {
		t.Fatal(err)
	}
	if err := legacy.ConfigureLM(ctx, adapters.LMConfig{Provider: "dummy", Answers: dummyAnswers(20)}); err != nil {
		t.Fatal(err)
	}
	id, err := legacy.CreateProgram(ctx, "question -> answer", adapters.WithModule("ChainOfThought"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := legacy.ExecuteProgram(ctx, id, map[string]any{"question": "capital of France?"})
	if err != nil || out["answer"] != "Paris" {
		t.Fatalf("legacy execute over the remote: %v %v", out, err)
	}
	if info, err := legacy.GetProgramInfo(ctx, id); err != nil || info.ID != id || info.Module != "ChainOfThought" {
		t.Fatalf("legacy info: %+v %v", info, err)
	}
	if err := legacy.HealthCheck(ctx); err != nil {
		t.Fatal(err)
	}
	if st := legacy.GetStats(); st.Size != 1 {
		t.Fatalf("legacy stats over the remote: %+v", st)
	}

	port, err := adapters.NewPythonPort(ctx, adapters.Options{Adapter: r, Phase: adapters.PhaseOff})
	if err != nil {
		t.Fatal(err)
	}
	viaPort, err := port.ExecuteProgram(ctx, id, map[string]any{"question": "capital of France?"})
	if err != nil || !maps.Equal(viaPort, out) {
		t.Fatalf("PythonPort over the remote: %v %v, PythonPoolV2 gave %v", viaPort, err, out)
	}

	// The package-level functions run on the default pool, which SetDefault makes this one.
	adapters.SetDefault(legacy)
	t.Cleanup(func() { adapters.SetDefault(nil) })
	second, err := adapters.CreateProgram(ctx, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := adapters.ExecuteProgram(ctx, second, map[string]any{"question": "q"}); err != nil || out["answer"] != "Paris" {
		t.Fatalf("package-level execute over the remote: %v %v", out, err)
	}
	ids, err := adapters.ListPrograms(ctx)
	if want := slices.Sorted(slices.Values([]string{id, second})); err != nil || !slices.Equal(ids, want) {
		t.Fatalf("package-level list: %v %v, want %v", ids, err, want)
	}
	if err := adapters.DeleteProgram(ctx, second); err != nil {
		t.Fatal(err)
	}
	// Close leaves an adapter it did not open running: the remote still serves.
	if err := legacy.Close(); err != nil {
		t.Fatal(err)
	}
	if err := port.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Health(ctx); err != nil {
		t.Fatalf("the remote after the legacy wrappers closed: %v", err)
	}
}
