package mlbridge_test

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/mlbridge/mlbridge"
)

func TestArrayRoundTrip(t *testing.T) {
	in := []float64{0, -1.5, math.Pi, math.Inf(1), 1e-300, 6}
	a, err := mlbridge.Float64Array(in, 2, 3)
	if err != nil || a.DType != "float64" || !slices.Equal(a.Shape, []int{2, 3}) || len(a.Data) != 48 {
		t.Fatalf("%+v %v", a, err)
	}
	out, err := a.Float64s()
	if err != nil || !slices.Equal(out, in) {
		t.Fatalf("%v %v", out, err)
	}
	ints := []int64{math.MinInt64, -1, 0, 1 << 60, math.MaxInt64}
	b, _ := mlbridge.Int64Array(ints)
	if got, err := b.Int64s(); err != nil || !slices.Equal(got, ints) {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := a.Int64s(); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("floats as ints: %v", err)
	}
	small := mlbridge.Array{DType: "int8", Shape: []int{3}, Data: []byte{0xff, 0, 7}}
	if got, _ := small.Int64s(); !slices.Equal(got, []int64{-1, 0, 7}) {
		t.Fatalf("int8: %v", got)
	}
}

func TestArrayRejects(t *testing.T) {
	if _, err := mlbridge.Float64Array([]float64{1, 2, 3}, 2, 2); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("wrong shape: %v", err)
	}
	if _, err := mlbridge.Float64Array(nil, -1); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("negative shape: %v", err)
	}
	short := mlbridge.Array{DType: "float64", Shape: []int{2}, Data: make([]byte, 15)}
	if _, err := short.Float64s(); !errors.Is(err, mlbridge.ErrSerialization) {
		t.Fatalf("short data: %v", err)
	}
	if _, err := (mlbridge.Array{DType: "complex128", Shape: []int{1}, Data: make([]byte, 16)}).Float64s(); err == nil {
		t.Fatal("unknown dtype accepted")
	}
}
