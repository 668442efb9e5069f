//go:build unix

package mlbridge_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mlbridge/mlbridge"
)

// A Result's shared array is copied once, straight into the Array it is decoded into. Decoding
// it again is a typed error, never another result's bytes or the caller's later writes (the
// buffer may have been reused, as Decode allows); Raw first makes a copy the Result keeps, which
// later decodes read however the decoded Arrays are changed.
func TestSharedResultDecodesOnce(t *testing.T) {
	b := open(t)
	requireShared(t, b.Info())
	ctx := context.Background()
	const n = 1 << 16 // 512 KiB: shared
	fill := func(v float64) mlbridge.Array {
		data := make([]float64, n)
		for i := range data {
			data[i] = v
		}
		a, _ := mlbridge.Float64Array(data)
		return a
	}
	call := func(v float64) mlbridge.Result {
		res, err := b.Call(ctx, "echo_array", map[string]any{"a": fill(v), "copy": true})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	resA, resB := call(1), call(2)
	var buf mlbridge.Array
	if err := resA.Decode(&buf); err != nil {
		t.Fatal(err)
	}
	if err := resB.Decode(&buf); err != nil { // into A's buffer: Data's capacity is reused
		t.Fatal(err)
	}
	if v, _ := buf.Float64s(); v[0] != 2 || v[n-1] != 2 {
		t.Fatalf("result B decoded to %v, want 2", v[0])
	}
	var again mlbridge.Array
	if err := resA.Decode(&again); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		v, _ := again.Float64s()
		t.Fatalf("result A decoded a second time: err %v (first value %v), want ErrInvalidArgument", err, v)
	}

	// Raw before decoding: the Result keeps that copy, and decodes from it as often as asked
	resC := call(3)
	raw := resC.Raw()
	var c1 mlbridge.Array
	if err := resC.Decode(&c1); err != nil {
		t.Fatal(err)
	}
	c1.Data[0] = 0xff // writing into a decoded Array
	var c2, viaRaw mlbridge.Array
	if err := resC.Decode(&c2); err != nil {
		t.Fatal(err)
	}
	if err := mlbridge.RawResult(raw).Decode(&viaRaw); err != nil {
		t.Fatal(err)
	}
	for name, a := range map[string]mlbridge.Array{"second decode": c2, "Raw": viaRaw} {
		if v, _ := a.Float64s(); v[0] != 3 || v[n-1] != 3 {
			t.Errorf("%s after writing into the first decode's Array reads %v, want 3", name, v[0])
		}
	}
}
