//go:build unix

package mlbridge_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge"
)

// Arrays of at least Config.SharedMemoryMin bytes travel through shared memory (array_wire.go,
// internal/shm, python/mlbridge_worker/shm.py); these tests go through a real worker.

func ramp(n int) []float64 {
	data := make([]float64, n)
	for i := range data {
		data[i] = float64(i)
	}
	return data
}

type arrayInfo struct {
	Sum       float64 `msgpack:"sum"`
	Shared    bool    `msgpack:"shared"`
	Writeable bool    `msgpack:"writeable"`
}

func requireShared(t *testing.T, info mlbridge.Info) {
	t.Helper()
	if !slices.Contains(info.Capabilities, "shm") {
		t.Fatalf("the worker did not announce shared memory: capabilities %v", info.Capabilities)
	}
}

func TestSharedArrayRoundTrip(t *testing.T) {
	b := open(t)
	requireShared(t, b.Info())
	ctx := context.Background()
	const n = 1 << 19 // 4 MiB: over the 256 KiB default
	a, _ := mlbridge.Float64Array(ramp(n), 512, 1024)

	info := call[arrayInfo](t, b, "array_info", map[string]any{"a": a})
	if !info.Shared || info.Writeable || info.Sum != float64(n)*float64(n-1)/2 {
		t.Fatalf("a 4 MiB array reached numpy as %+v; want a read-only view of shared memory", info)
	}
	// The threshold, DefaultSharedMemoryMin (256 KiB): from it on, shared memory.
	for _, tc := range []struct {
		elems  int
		shared bool
	}{{1024, false}, {32<<10 - 1, false}, {32 << 10, true}} {
		x, _ := mlbridge.Float64Array(ramp(tc.elems))
		if info := call[arrayInfo](t, b, "array_info", map[string]any{"a": x}); info.Shared != tc.shared {
			t.Fatalf("a %d-byte array: shared %v, want %v", 8*tc.elems, info.Shared, tc.shared)
		}
	}

	res, err := b.Call(ctx, "echo_array", map[string]any{"a": a, "scale": 2.0})
	if err != nil {
		t.Fatal(err)
	}
	var out mlbridge.Array
	if err := res.Decode(&out); err != nil {
		t.Fatal(err)
	}
	got, err := out.Float64s()
	if err != nil || !slices.Equal(out.Shape, []int{512, 1024}) || len(got) != n || got[n-1] != 2*float64(n-1) || got[1] != 2 {
		t.Fatalf("echo_array: shape %v, %d elements, err %v", out.Shape, len(got), err)
	}
	// A second decode is refused (the bytes went into out, TestSharedResultDecodesOnce)...
	var again mlbridge.Array
	if err := res.Decode(&again); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("second decode: %v, want ErrInvalidArgument", err)
	}
	// ...while the raw forms, taken first, inline the same bytes and keep them.
	res, err = b.Call(ctx, "echo_array", map[string]any{"a": a, "scale": 2.0})
	if err != nil {
		t.Fatal(err)
	}
	v, err := res.Value()
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := v.(map[string]any); !ok || !bytes.Equal(m["data"].([]byte), out.Data) {
		t.Fatalf("Value() did not inline the shared bytes: %T", v)
	}
	var fromRaw, decoded mlbridge.Array
	if err := mlbridge.RawResult(res.Raw()).Decode(&fromRaw); err != nil || !bytes.Equal(fromRaw.Data, out.Data) {
		t.Fatalf("Raw() does not stand alone: %v", err)
	}
	if err := res.Decode(&decoded); err != nil || !bytes.Equal(decoded.Data, out.Data) {
		t.Fatalf("decode after Value and Raw: %v", err)
	}
}

// Decoding into an Array whose Data has room reuses it: a loop receiving large arrays
// allocates nothing per call.
func TestSharedArrayDecodeReusesData(t *testing.T) {
	b := open(t)
	a, _ := mlbridge.Float64Array(ramp(1 << 18))
	var out mlbridge.Array
	var first *byte
	for i := range 3 {
		res, err := b.Call(context.Background(), "echo_array", map[string]any{"a": a})
		if err != nil {
			t.Fatal(err)
		}
		if err := res.Decode(&out); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = &out.Data[0]
		} else if &out.Data[0] != first {
			t.Fatalf("call %d: Data was reallocated", i)
		}
	}
	if !bytes.Equal(out.Data, a.Data) {
		t.Fatal("echoed bytes differ")
	}
}

func TestSharedArrayAllocatedInSharedMemory(t *testing.T) {
	b := open(t)
	sa, err := mlbridge.NewSharedFloat64Array(1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	view, err := sa.Float64View()
	if err != nil {
		t.Fatal(err)
	}
	for i := range view {
		view[i] = 0.5
	}
	info := call[arrayInfo](t, b, "array_info", map[string]any{"a": sa.Array})
	if !info.Shared || info.Sum != 0.5*1e6 {
		t.Fatalf("shared array reached numpy as %+v", info)
	}
	// The memory is shared for real: a write after the call is seen by the next one (the
	// SharedArray itself passed this time: it travels as its Array).
	view[0] = 1000.5
	if info := call[arrayInfo](t, b, "array_info", map[string]any{"a": sa}); !info.Shared || info.Sum != 0.5*1e6+1000 {
		t.Fatalf("after a write: %+v", info)
	}
	if _, err := sa.Int64View(); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("Int64View of a float64 array: %v", err)
	}
	if _, err := mlbridge.NewSharedArray("complex128", 4); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("unknown dtype: %v", err)
	}
}

// The Array of a closed SharedArray (its Data unmapped) is refused with ErrInvalidArgument,
// whether it would go inline (small, or shared memory off) or in a segment, and by the readers:
// reading it used to crash the whole host with an unrecoverable fault.
func TestSharedArrayUsedAfterClose(t *testing.T) {
	for _, shmMin := range []int{0, -1} {
		b := open(t, func(c *mlbridge.Config) { c.SharedMemoryMin = shmMin })
		for _, n := range []int{8, 1 << 20} {
			sa, err := mlbridge.NewSharedFloat64Array(n)
			if err != nil {
				t.Fatal(err)
			}
			kept := sa.Array // a copy of the Array, kept past Close (in an argument map, say)
			if err := sa.Close(); err != nil {
				t.Fatal(err)
			}
			for _, arg := range []any{kept, sa} {
				_, err := b.Call(context.Background(), "array_info", map[string]any{"a": arg})
				if !errors.Is(err, mlbridge.ErrInvalidArgument) || !strings.Contains(err.Error(), "after its Close") {
					t.Fatalf("SharedMemoryMin %d, %d elements, %T: %v", shmMin, n, arg, err)
				}
			}
			if _, err := kept.Float64s(); !errors.Is(err, mlbridge.ErrInvalidArgument) {
				t.Fatalf("Float64s after Close: %v", err)
			}
			if v, err := sa.Float64View(); !errors.Is(err, mlbridge.ErrInvalidArgument) {
				t.Fatalf("Float64View after Close: %d elements, %v", len(v), err)
			}
			// decoding into it must not reuse the unmapped memory
			ramp8, _ := mlbridge.Float64Array(ramp(n))
			res, err := b.Call(context.Background(), "echo_array", map[string]any{"a": ramp8, "copy": true})
			if err != nil {
				t.Fatal(err)
			}
			if err := res.Decode(&kept); err != nil || !bytes.Equal(kept.Data, ramp8.Data) {
				t.Fatalf("decoding into a closed SharedArray's Array: %v", err)
			}
		}
		if info := call[arrayInfo](t, b, "array_info", map[string]any{"a": []float64{1, 2}}); info.Sum != 3 {
			t.Fatalf("after the refusals: %+v", info)
		}
	}
}

// Arrays in shared memory are not in a frame: MaxFrame does not bound them.
func TestSharedArrayPassesMaxFrame(t *testing.T) {
	b := open(t, func(c *mlbridge.Config) { c.MaxFrame = 1 << 20 })
	a, _ := mlbridge.Float64Array(ramp(1 << 20)) // 8 MiB, frames of 1 MiB
	out, err := mlbridge.Decode[mlbridge.Array](b.Call(context.Background(), "echo_array", map[string]any{"a": a}))
	if err != nil || !bytes.Equal(out.Data, a.Data) {
		t.Fatalf("8 MiB through 1 MiB frames: %v", err)
	}
}

// With shared memory off, the same arrays travel through the pipe as before.
func TestSharedMemoryOff(t *testing.T) {
	b := open(t, func(c *mlbridge.Config) { c.SharedMemoryMin = -1 })
	if slices.Contains(b.Info().Capabilities, "shm") {
		t.Fatal("shared memory announced although off")
	}
	a, _ := mlbridge.Float64Array(ramp(1 << 19))
	if info := call[arrayInfo](t, b, "array_info", map[string]any{"a": a}); info.Shared {
		t.Fatalf("shared although off: %+v", info)
	}
	out, err := mlbridge.Decode[mlbridge.Array](b.Call(context.Background(), "echo_array", map[string]any{"a": a}))
	if err != nil || !bytes.Equal(out.Data, a.Data) {
		t.Fatalf("pipe round trip: %v", err)
	}
}

// Workers forked from a zygote (Preload) get their segment channel through it.
func TestSharedArrayPreloadedWorker(t *testing.T) {
	p := openPool(t, func(c *mlbridge.PoolConfig) { c.Preload = true; c.Size = 1 })
	a, _ := mlbridge.Float64Array(ramp(1 << 19))
	info := poolCall[arrayInfo](t, p, "array_info", map[string]any{"a": a})
	if !info.Shared {
		t.Fatalf("a preloaded worker received %+v", info)
	}
	out := poolCall[mlbridge.Array](t, p, "echo_array", map[string]any{"a": a})
	if !bytes.Equal(out.Data, a.Data) {
		t.Fatal("echoed bytes differ")
	}
}

// A 1 GiB array each way: no ceiling. Allocated in shared memory on the way in.
func TestSharedArray1GiB(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 2 GiB and maps 3 GiB (-short)")
	}
	b := open(t)
	sa, err := mlbridge.NewSharedFloat64Array(1 << 27) // 1 GiB
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	view, _ := sa.Float64View()
	for i := range view {
		view[i] = float64(i & 1023)
	}
	out, err := mlbridge.Decode[mlbridge.Array](b.Call(context.Background(), "echo_array", map[string]any{"a": sa.Array, "scale": 3.0}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := out.Float64s()
	if err != nil || len(got) != 1<<27 {
		t.Fatalf("%d elements, %v", len(got), err)
	}
	for _, i := range []int{0, 1, 1023, 1024, 1<<27 - 1} {
		if got[i] != 3*float64(i&1023) {
			t.Fatalf("element %d is %v", i, got[i])
		}
	}
}
