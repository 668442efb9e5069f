//go:build unix

package worker

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge/internal/errs"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// Raising only HeartbeatInterval (to the 5 s that used to be its default) must not leave a
// liveness timeout shorter than the pings: that would blame every idle worker.
func TestLivenessTimeoutsFollowTheInterval(t *testing.T) {
	for _, tc := range []struct {
		cfg                     Config
		wantLive, wantHeartbeat time.Duration
	}{
		{Config{}, 1500 * time.Millisecond, 10 * time.Second},
		{Config{HeartbeatInterval: 5 * time.Second}, 10 * time.Second, 15 * time.Second},
		{Config{HeartbeatInterval: 50 * time.Millisecond, HeartbeatTimeout: 300 * time.Millisecond}, 1500 * time.Millisecond, 300 * time.Millisecond},
		{Config{LivenessTimeout: -1}, -1, 10 * time.Second},
	} {
		d := tc.cfg.withDefaults()
		if d.LivenessTimeout != tc.wantLive || d.HeartbeatTimeout != tc.wantHeartbeat {
			t.Errorf("%+v: liveness %s, heartbeat %s; want %s, %s", tc.cfg, d.LivenessTimeout, d.HeartbeatTimeout, tc.wantLive, tc.wantHeartbeat)
		}
	}
}

// A stopped worker is first marked unresponsive (Unresponsive closes), and only killed once
// silent for HeartbeatTimeout; a worker that answers is never marked.
func TestUnresponsiveBeforeKilled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := Start(ctx, Config{Python: testenv.Python(t), Bridge: testenv.EchoBridge, Logger: slog.New(slog.DiscardHandler),
		HeartbeatInterval: 20 * time.Millisecond, LivenessTimeout: 200 * time.Millisecond, HeartbeatTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Kill("test over"); <-w.Done() })
	callEcho[any](t, w, "noop", nil)
	time.Sleep(400 * time.Millisecond) // two liveness timeouts of answered pings
	select {
	case <-w.Unresponsive():
		t.Fatal("a worker answering its pings was marked unresponsive")
	default:
	}
	if err := syscall.Kill(w.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	<-w.Unresponsive()
	select {
	case <-w.Done():
		t.Fatal("killed at the liveness timeout; it should only be marked")
	default:
	}
	<-w.Done()
	var exit *errs.ExitError
	if !errors.As(w.Err(), &exit) || !strings.Contains(exit.Reason, "heartbeat timeout") {
		t.Fatalf("death error %v", w.Err())
	}
}

// A relative interpreter path names a file relative to the host's working directory, also
// when the worker runs elsewhere (Dir) — and its lifeline guardian, in "/", finds it too.
func TestRelativePythonPath(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, testenv.Python(t))
	if err != nil || filepath.IsAbs(rel) {
		t.Skipf("no relative path to the interpreter from %s", wd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := Start(ctx, Config{Python: rel, Dir: t.TempDir(), Bridge: testenv.EchoBridge, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("start with %s: %v", rel, err)
	}
	t.Cleanup(func() { w.Kill("test over"); <-w.Done() })
	callEcho[any](t, w, "noop", nil)
}
