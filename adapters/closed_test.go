package adapters_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/adapters"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// A legacy port used after Close: Close again is nil, and every call that would change or
// run a program fails with ErrClosed. ConfigureLM used to return nil, keeping an LM no
// worker would ever get.
func TestLegacyCallsAfterClose(t *testing.T) {
	ctx := context.Background()
	port, err := adapters.NewPythonPort(ctx, adapters.Options{Python: testenv.Python(t), Phase: adapters.PhaseOff})
	if err != nil {
		t.Fatal(err)
	}
	if err := port.ConfigureLM(ctx, dummyLM(10)); err != nil {
		t.Fatal(err)
	}
	id, err := port.CreateProgram(ctx, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	if err := port.Close(); err != nil {
		t.Fatal(err)
	}
	if err := port.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := port.ConfigureLM(ctx, dummyLM(10)); !errors.Is(err, mlbridge.ErrClosed) {
		t.Errorf("ConfigureLM after Close: %v, want ErrClosed", err)
	}
	if _, err := port.CreateProgram(ctx, "question -> answer"); !errors.Is(err, mlbridge.ErrClosed) {
		t.Errorf("CreateProgram after Close: %v, want ErrClosed", err)
	}
	if _, err := port.ExecuteProgram(ctx, id, map[string]any{"question": "q"}); !errors.Is(err, mlbridge.ErrClosed) {
		t.Errorf("ExecuteProgram after Close: %v, want ErrClosed", err)
	}
	if err := port.DeleteProgram(ctx, id); !errors.Is(err, mlbridge.ErrClosed) {
		t.Errorf("DeleteProgram after Close: %v, want ErrClosed", err)
	}
	if err := port.HealthCheck(ctx); !errors.Is(err, mlbridge.ErrClosed) {
		t.Errorf("HealthCheck after Close: %v, want ErrClosed", err)
	}
}
