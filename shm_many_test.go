//go:build unix

package mlbridge_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
)

// A frame refers to at most worker.MaxSegmentsPerFrame segments (every one is queued on the
// segment channel before the frame, and the peer drains it only when it decodes the frame); the
// arrays past the cap travel inline. Before the cap, 1000 shared arrays in one request blocked the
// host's send for ever under the write lock, and 1000 in one result timed the worker's send out.

func TestManySharedArraysInOneCall(t *testing.T) {
	b := open(t, func(c *mlbridge.Config) { c.SharedMemoryMin = 1024 })
	requireShared(t, b.Info())
	const count = 1000
	arrays := make([]mlbridge.Array, count)
	for i := range arrays {
		data := make([]float64, 128) // 1 KiB each: shared
		for j := range data {
			data[j] = float64(i)
		}
		arrays[i], _ = mlbridge.Float64Array(data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// echo sends back what it received: the shared ones as the segments they came in, the rest inline
	var out []mlbridge.Array
	res, err := b.Call(ctx, "echo", map[string]any{"value": arrays})
	if err == nil {
		err = res.Decode(&out)
	}
	if err != nil {
		t.Fatalf("%d shared arrays in one call: %v", count, err)
	}
	checkArrays(t, out, count, 128)
	// the worker still serves
	if got := call[int](t, b, "add", map[string]any{"a": 1, "b": 2}); got != 3 {
		t.Fatalf("add after the call: %d", got)
	}
}

func TestManySharedArraysInOneResult(t *testing.T) {
	b := open(t, func(c *mlbridge.Config) { c.SharedMemoryMin = 1024 })
	requireShared(t, b.Info())
	const count = 1000
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []mlbridge.Array
	res, err := b.Call(ctx, "new_arrays", map[string]any{"count": count, "n": 128})
	if err == nil {
		err = res.Decode(&out)
	}
	if err != nil {
		t.Fatalf("a result of %d shared arrays: %v", count, err)
	}
	checkArrays(t, out, count, 128)
	if got := call[int](t, b, "add", map[string]any{"a": 1, "b": 2}); got != 3 {
		t.Fatalf("add after the call: %d", got)
	}
}

// checkArrays: count float64 arrays of n elements, the i-th all i.
func checkArrays(t *testing.T, out []mlbridge.Array, count, n int) {
	t.Helper()
	if len(out) != count {
		t.Fatalf("%d arrays back, want %d", len(out), count)
	}
	for i, a := range out {
		v, err := a.Float64s()
		if err != nil || len(v) != n || v[0] != float64(i) || v[n-1] != float64(i) {
			t.Fatalf("array %d: %v (err %v), want %d × %d", i, v[:min(len(v), 3)], err, n, i)
		}
	}
}

// A worker whose loop does not drain the segment channel (here: blocked) while calls keep
// sending shared arrays: the socket fills, and a send may not hold the write lock for ever.
// It gives up (10 s), the worker is lost (killed: it does not drain its channel), and every call
// returns, as a call to a dead worker.
func TestSegmentSendDoesNotBlockForEver(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the segment send timeout")
	}
	b := open(t, func(c *mlbridge.Config) {
		c.SharedMemoryMin = 1024
		c.HeartbeatInterval = -1 // no liveness verdict: the send's own bound is what ends this
	})
	requireShared(t, b.Info())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	blocked := make(chan error, 1)
	go func() {
		_, err := b.Call(ctx, "block_loop", map[string]any{"seconds": 60})
		blocked <- err
	}()
	time.Sleep(300 * time.Millisecond) // the loop is held
	arrays := make([]mlbridge.Array, 32)
	for i := range arrays {
		arrays[i], _ = mlbridge.Float64Array(ramp(128)) // 1 KiB: shared
	}
	const calls = 12 // 12 × 32 segments: more than the socket holds (278 on Linux)
	errc := make(chan error, calls)
	for range calls {
		go func() {
			_, err := b.Call(ctx, "echo", map[string]any{"value": arrays})
			errc <- err
		}()
	}
	exited := 0
	for range calls {
		err := <-errc
		if errors.Is(err, mlbridge.ErrSerialization) || err == nil {
			t.Errorf("a call to a worker that stopped draining its channel: %v; want it lost", err)
		}
		if errors.Is(err, mlbridge.ErrWorkerExited) {
			exited++
		}
	}
	if err := <-blocked; !errors.Is(err, mlbridge.ErrWorkerExited) {
		t.Errorf("the blocking call: %v; want ErrWorkerExited", err)
	}
	if exited == 0 {
		t.Error("no call failed with ErrWorkerExited")
	}
}
