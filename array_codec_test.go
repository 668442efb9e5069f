package mlbridge_test

import (
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge"
)

// A struct that embeds an Array keeps its other fields (the array's codec is registered for
// its type, not promoted as methods would be), and Arrays inside containers and behind
// pointers use the codec.
func TestArrayCodecNotPromoted(t *testing.T) {
	type labelled struct {
		mlbridge.Array
		Label string `msgpack:"label"`
	}
	a, _ := mlbridge.Int32Array([]int32{1, 2, 3})
	b, err := msgpack.Marshal(labelled{Array: a, Label: "x"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["label"] != "x" {
		t.Fatalf("the embedding struct lost its field: %v", m)
	}
	var back struct {
		P *mlbridge.Array           `msgpack:"p"`
		M map[string]mlbridge.Array `msgpack:"m"`
	}
	b, _ = msgpack.Marshal(map[string]any{"p": &a, "m": map[string]mlbridge.Array{"k": a}})
	if err := msgpack.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if v, err := back.P.Int32s(); err != nil || len(v) != 3 || v[2] != 3 {
		t.Fatalf("pointer: %v %v", v, err)
	}
	if v, err := back.M["k"].Int32s(); err != nil || v[0] != 1 {
		t.Fatalf("map value: %v %v", v, err)
	}
}
