package worker

import (
	"errors"
	"testing"
)

// Compiled by scripts/test (GOOS=darwin go vet), run on a Mac: no zygote is forked there, and
// asking for one says so instead of failing on a missing socket type.
func TestDarwinStartsNoZygote(t *testing.T) {
	if _, err := StartZygote(Config{Bridge: "mlbridge_worker.echo:Echo"}); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("StartZygote: got %v, want ErrUnsupported", err)
	}
}
