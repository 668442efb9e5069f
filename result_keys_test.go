package mlbridge_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/mlbridge/mlbridge"
)

// A Python dict whose keys are not strings ({0: "setosa"}, as class labels come back) is a
// map[any]any through Value and Decode into any; it failed to decode at all ("invalid
// code=1 decoding string/bytes length"). Dicts with string keys stay map[string]any.
func TestResultWithNonStringKeys(t *testing.T) {
	b := open(t)
	ctx := context.Background()
	value := map[string]any{
		"labels": map[int]string{0: "setosa", 1: "versicolor"},
		"mixed":  map[any]any{"a": 1, 2: "b"},
		"named":  map[string]int{"x": 1},
	}
	want := map[string]any{ // msgpack's smallest integer width: int8
		"labels": map[any]any{int8(0): "setosa", int8(1): "versicolor"},
		"mixed":  map[any]any{"a": int8(1), int8(2): "b"},
		"named":  map[string]any{"x": int8(1)},
	}
	res, err := b.Call(ctx, "echo", map[string]any{"value": value})
	if err != nil {
		t.Fatal(err)
	}
	got, err := res.Value()
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Value: %#v %v\nwant %#v", got, err, want)
	}
	// Decode keeps msgpack's sizes (int8 here), so only the shape is compared.
	decoded, err := mlbridge.Decode[map[string]any](res, nil)
	if labels, ok := decoded["labels"].(map[any]any); err != nil || !ok || len(labels) != 2 {
		t.Fatalf("Decode[map[string]any]: %#v %v", decoded, err)
	}
	typed, err := mlbridge.Decode[map[string]map[int]string](b.Call(ctx, "echo", map[string]any{"value": map[string]any{"labels": value["labels"]}}))
	if err != nil || typed["labels"][1] != "versicolor" {
		t.Fatalf("typed: %v %v", typed, err)
	}
}
