//go:build unix

package mlbridge_test

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
)

// A call whose arguments go through shared memory, sent to a worker that has just died, fails
// like any call to a dead worker: ErrWorkerExited (a pool places it again), not ErrSerialization
// (the segment send's EPIPE used to be taken for a failure of this call's arguments).
func TestSharedCallToJustDiedWorker(t *testing.T) {
	a, _ := mlbridge.Float64Array(ramp(1<<19), 1<<19) // 4 MiB: shared
	for i := range 10 {
		b := open(t)
		requireShared(t, b.Info())
		if err := syscall.Kill(b.Info().Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i%3) * time.Millisecond) // gone; the host may or may not have noticed
		_, err := b.Call(context.Background(), "array_info", map[string]any{"a": a})
		if !errors.Is(err, mlbridge.ErrWorkerExited) || errors.Is(err, mlbridge.ErrSerialization) {
			t.Errorf("attempt %d: a call to a dead worker failed with %v; want ErrWorkerExited", i, err)
		}
		_ = b.Close()
	}
}

// A worker that closed its end of the segment channel but lives on breaks the protocol: the
// call fails as a call to a dead worker (the host kills it), not as a serialization error.
func TestSharedCallToBrokenSegmentChannel(t *testing.T) {
	b := open(t)
	requireShared(t, b.Info())
	if !call[bool](t, b, "close_segment_channel", nil) {
		t.Fatal("the worker has no segment channel")
	}
	a, _ := mlbridge.Float64Array(ramp(1<<19), 1<<19) // 4 MiB: shared
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := b.Call(ctx, "array_info", map[string]any{"a": a})
	if !errors.Is(err, mlbridge.ErrWorkerExited) || errors.Is(err, mlbridge.ErrSerialization) {
		t.Fatalf("a shared call over a broken segment channel failed with %v; want ErrWorkerExited", err)
	}
}
