//go:build unix

package mlbridge_test

import (
	"context"
	"testing"

	"github.com/mlbridge/mlbridge"
)

// A Result is a value: decoding it (into any buffer, which may be reused for another Result),
// writing into what it decoded to, or writing into the SharedArray it was computed from does
// not change what it decodes to later.

func TestSharedResultIsAValue(t *testing.T) {
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
	resA, err := b.Call(ctx, "echo_array", map[string]any{"a": fill(1), "copy": true})
	if err != nil {
		t.Fatal(err)
	}
	resB, err := b.Call(ctx, "echo_array", map[string]any{"a": fill(2), "copy": true})
	if err != nil {
		t.Fatal(err)
	}
	var buf mlbridge.Array
	if err := resA.Decode(&buf); err != nil {
		t.Fatal(err)
	}
	if err := resB.Decode(&buf); err != nil { // into A's buffer: Data's capacity is reused
		t.Fatal(err)
	}
	if v, _ := buf.Float64s(); v[0] != 2 {
		t.Fatalf("result B decoded to %v, want 2", v[0])
	}
	var again mlbridge.Array
	if err := resA.Decode(&again); err != nil {
		t.Fatal(err)
	}
	if v, _ := again.Float64s(); v[0] != 1 || v[n-1] != 1 {
		t.Errorf("result A decoded a second time reads %v: another result's bytes", v[0])
	}
	// writing into a decoded Array
	again.Data[0] = 0xff
	var third mlbridge.Array
	if err := resA.Decode(&third); err != nil {
		t.Fatal(err)
	}
	if v, _ := third.Float64s(); v[0] != 1 {
		t.Errorf("writing into a decoded Array changed its Result: %v", v[0])
	}
	// and Raw, inlined from the Result's own copy, too
	var viaRaw mlbridge.Array
	if err := mlbridge.RawResult(resA.Raw()).Decode(&viaRaw); err != nil {
		t.Fatal(err)
	}
	if v, _ := viaRaw.Float64s(); v[0] != 1 {
		t.Errorf("Raw after the writes reads %v", v[0])
	}
}

// A SharedArray the handler returned as it received it comes back as the caller's own segment:
// the Result reads it at arrival, so a write into the SharedArray after Call returned does not
// show in it.
func TestSharedArrayEchoIsReadAtArrival(t *testing.T) {
	b := open(t)
	requireShared(t, b.Info())
	sa, err := mlbridge.NewSharedFloat64Array(1 << 16)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	v, _ := sa.Float64View()
	for i := range v {
		v[i] = 1
	}
	res, err := b.Call(context.Background(), "echo_array", map[string]any{"a": sa.Array})
	if err != nil {
		t.Fatal(err)
	}
	v[0] = 42 // after the call returned, before decoding
	var out mlbridge.Array
	if err := res.Decode(&out); err != nil {
		t.Fatal(err)
	}
	if got, _ := out.Float64s(); got[0] != 1 || got[len(got)-1] != 1 {
		t.Errorf("the Result changed after the call returned: %v (sent 1, wrote 42 after)", got[0])
	}
}
