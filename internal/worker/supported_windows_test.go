package worker

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// Compiled by scripts/test (GOOS=windows go vet), run on Windows: both ways of starting a
// worker refuse with ErrUnsupported and point at WSL2, before looking for an interpreter.
func TestWindowsRefusesToStartWorkers(t *testing.T) {
	cfg := Config{Bridge: "mlbridge_worker.echo:Echo", Python: `C:\no\such\python.exe`}
	if _, err := Start(context.Background(), cfg); !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "WSL2") {
		t.Fatalf("Start: got %v, want ErrUnsupported naming WSL2", err)
	}
	if _, err := StartZygote(cfg); !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "WSL2") {
		t.Fatalf("StartZygote: got %v, want ErrUnsupported naming WSL2", err)
	}
}
