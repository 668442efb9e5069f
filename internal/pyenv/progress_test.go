package pyenv

import (
	"bytes"
	"context"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A silent installer gets a "still ..." line per heartbeat; its output is streamed; a failure
// whose output was not shown carries its last lines.
func TestPythonSetupProgress(t *testing.T) {
	old := heartbeat
	heartbeat = 40 * time.Millisecond
	defer func() { heartbeat = old }()
	var out bytes.Buffer
	s := &setup{opts: Options{Out: &out}}
	ctx := context.Background()
	if err := s.run(ctx, "still compiling", exec.Command("sh", "-c", "sleep 0.3; echo built")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "mlbridge: still compiling (") || !strings.Contains(out.String(), "  built\n") {
		t.Fatalf("progress:\n%s", out.String())
	}
	s.opts.Out = io.Discard
	err := s.run(ctx, "x", exec.Command("sh", "-c", "echo no compiler; exit 3"))
	if err == nil || !strings.Contains(err.Error(), "no compiler") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("failure: %v", err)
	}
}
