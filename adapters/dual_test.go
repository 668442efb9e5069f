package adapters_test

import (
	"context"
	"maps"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/adapters"
	"github.com/mlbridge/mlbridge/dspy"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// The legacy PythonPoolV2 and the registry's "dspy" adapter share one pool and one program
// store: a program created with either API runs through the other, with equal results.
func TestLegacyAndRegistryShareOnePool(t *testing.T) {
	ctx := context.Background()
	reg, err := mlbridge.NewRegistry(mlbridge.RegistryConfig{Python: testenv.Python(t), Bridges: map[string]mlbridge.BridgeConfig{
		"dspy": {Bridge: dspy.Bridge, Workers: 2},
	}}, mlbridge.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	a, err := reg.Adapter(ctx, "dspy")
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Adapter: a})
	if err != nil {
		t.Fatal(err)
	}
	client := dspy.New(a)
	if err := legacy.ConfigureLM(ctx, dummyLM(100)); err != nil {
		t.Fatal(err)
	}

	oldID, err := legacy.CreateProgram(ctx, "question -> answer, confidence: float", adapters.WithModule("ChainOfThought"))
	if err != nil {
		t.Fatal(err)
	}
	newID, err := client.CreateProgram(ctx, "question -> answer, confidence: float", dspy.WithModule("ChainOfThought"))
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]any{"question": "capital of France?"}
	for _, id := range []string{oldID, newID} {
		viaOld, err1 := legacy.ExecuteProgram(ctx, id, in)
		viaNew, err2 := client.ExecuteProgram(ctx, id, in)
		generic, err3 := mlbridge.Decode[map[string]any](a.Execute(ctx, id, in))
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("program %s: %v %v %v", id, err1, err2, err3)
		}
		if !maps.Equal(viaOld, viaNew) || !maps.Equal(viaNew, generic) || viaOld["answer"] != "Paris" {
			t.Fatalf("program %s: legacy %v, new %v, generic %v", id, viaOld, viaNew, generic)
		}
	}
	oldList, _ := legacy.ListPrograms(ctx)
	newList, _ := client.ListPrograms(ctx)
	if len(oldList) != 2 || len(newList) != 2 {
		t.Fatalf("programs: legacy sees %v, new sees %v", oldList, newList)
	}
	// Closing the legacy wrapper leaves the registry's pool running.
	if err := legacy.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Health(ctx); err != nil {
		t.Fatalf("after the legacy wrapper closed: %v", err)
	}
	if err := client.DeleteProgram(ctx, oldID); err != nil {
		t.Fatal(err)
	}
	if ids, _ := client.ListPrograms(ctx); len(ids) != 1 || ids[0] != newID {
		t.Fatalf("after delete: %v", ids)
	}
}
