//go:build unix

package mlbridge_test

import (
	"context"
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
