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

func TestArrayNarrowRoundTrips(t *testing.T) {
	f32 := []float32{0, -1.5, math.MaxFloat32, float32(math.Inf(-1)), math.SmallestNonzeroFloat32, 7}
	a, err := mlbridge.Float32Array(f32, 3, 2)
	if err != nil || a.DType != "float32" || !slices.Equal(a.Shape, []int{3, 2}) || len(a.Data) != 24 {
		t.Fatalf("%+v %v", a, err)
	}
	if got, err := a.Float32s(); err != nil || !slices.Equal(got, f32) {
		t.Fatalf("float32: %v %v", got, err)
	}
	if got, err := a.Float64s(); err != nil || got[1] != -1.5 || got[2] != math.MaxFloat32 {
		t.Fatalf("float32 as float64: %v %v", got, err)
	}

	i32 := []int32{math.MinInt32, -1, 0, 1, math.MaxInt32, 1 << 20}
	b, err := mlbridge.Int32Array(i32, 2, 3)
	if err != nil || b.DType != "int32" || len(b.Data) != 24 {
		t.Fatalf("%+v %v", b, err)
	}
	if got, err := b.Int32s(); err != nil || !slices.Equal(got, i32) {
		t.Fatalf("int32: %v %v", got, err)
	}
	if got, err := b.Int64s(); err != nil || got[0] != math.MinInt32 || got[4] != math.MaxInt32 {
		t.Fatalf("int32 as int64: %v %v", got, err)
	}
	if b.Data[0] != 0 || b.Data[3] != 0x80 { // little-endian, two's complement, as numpy '<i4'
		t.Fatalf("int32 bytes: % x", b.Data[:4])
	}

	u8 := []uint8{0, 1, 127, 128, 255}
	c, err := mlbridge.Uint8Array(u8)
	if err != nil || c.DType != "uint8" || !slices.Equal(c.Shape, []int{5}) {
		t.Fatalf("%+v %v", c, err)
	}
	u8[0] = 9 // the Array holds its own copy
	got8, err := c.Uint8s()
	if err != nil || !slices.Equal(got8, []uint8{0, 1, 127, 128, 255}) {
		t.Fatalf("uint8: %v %v", got8, err)
	}
	got8[1] = 9 // and so does what it returns
	if c.Data[1] != 1 {
		t.Fatal("Uint8s aliases Data")
	}

	bools := []bool{true, false, false, true}
	d, err := mlbridge.BoolArray(bools, 2, 2)
	if err != nil || d.DType != "bool" || !slices.Equal(d.Data, []byte{1, 0, 0, 1}) {
		t.Fatalf("%+v %v", d, err)
	}
	if got, err := d.Bools(); err != nil || !slices.Equal(got, bools) {
		t.Fatalf("bool: %v %v", got, err)
	}
	if got, err := d.Uint8s(); err != nil || !slices.Equal(got, []uint8{1, 0, 0, 1}) {
		t.Fatalf("bool as uint8: %v %v", got, err)
	}

	// empty and 0-d arrays
	if e, err := mlbridge.Float32Array(nil, 0, 3); err != nil || e.Len() != 0 {
		t.Fatalf("empty: %+v %v", e, err)
	} else if got, err := e.Float32s(); err != nil || len(got) != 0 {
		t.Fatalf("empty float32s: %v %v", got, err)
	}
	scalar := mlbridge.Array{DType: "int32", Shape: []int{}, Data: []byte{5, 0, 0, 0}}
	if got, err := scalar.Int32s(); err != nil || !slices.Equal(got, []int32{5}) {
		t.Fatalf("0-d: %v %v", got, err)
	}
}

// The narrow readers widen exactly what fits and refuse the rest by dtype.
func TestArrayNarrowConversions(t *testing.T) {
	small := map[string]mlbridge.Array{
		"int8":   {DType: "int8", Shape: []int{2}, Data: []byte{0xff, 0x7f}},
		"uint8":  {DType: "uint8", Shape: []int{2}, Data: []byte{0xff, 0x7f}},
		"int16":  {DType: "int16", Shape: []int{2}, Data: []byte{0x00, 0x80, 0xff, 0x7f}},
		"uint16": {DType: "uint16", Shape: []int{2}, Data: []byte{0xff, 0xff, 0xff, 0x7f}},
		"bool":   {DType: "bool", Shape: []int{2}, Data: []byte{1, 0}},
	}
	want := map[string][]int32{
		"int8": {-1, 127}, "uint8": {255, 127}, "int16": {math.MinInt16, math.MaxInt16},
		"uint16": {math.MaxUint16, math.MaxInt16}, "bool": {1, 0},
	}
	for dtype, a := range small {
		i, err := a.Int32s()
		if err != nil || !slices.Equal(i, want[dtype]) {
			t.Errorf("%s Int32s: %v %v", dtype, i, err)
		}
		f, err := a.Float32s()
		if err != nil || f[0] != float32(want[dtype][0]) || f[1] != float32(want[dtype][1]) {
			t.Errorf("%s Float32s: %v %v", dtype, f, err)
		}
	}

	f64, _ := mlbridge.Float64Array([]float64{1, 2})
	i64, _ := mlbridge.Int64Array([]int64{1, 2})
	f32, _ := mlbridge.Float32Array([]float32{1, 2})
	i32, _ := mlbridge.Int32Array([]int32{1, 2})
	u8, _ := mlbridge.Uint8Array([]uint8{1, 2})
	u32 := mlbridge.Array{DType: "uint32", Shape: []int{1}, Data: []byte{1, 0, 0, 0}}
	u64 := mlbridge.Array{DType: "uint64", Shape: []int{1}, Data: make([]byte, 8)}
	refused := []struct {
		reader string
		a      mlbridge.Array
	}{
		{"Float32s", f64}, {"Float32s", i64}, {"Float32s", i32}, {"Float32s", u32},
		{"Int32s", f64}, {"Int32s", f32}, {"Int32s", i64}, {"Int32s", u32}, {"Int32s", u64},
		{"Uint8s", f32}, {"Uint8s", i32}, {"Uint8s", mlbridge.Array{DType: "int8", Shape: []int{1}, Data: []byte{1}}},
		{"Bools", u8}, {"Bools", i32}, {"Bools", f64},
	}
	for _, r := range refused {
		var err error
		switch r.reader {
		case "Float32s":
			_, err = r.a.Float32s()
		case "Int32s":
			_, err = r.a.Int32s()
		case "Uint8s":
			_, err = r.a.Uint8s()
		case "Bools":
			_, err = r.a.Bools()
		}
		if !errors.Is(err, mlbridge.ErrInvalidArgument) {
			t.Errorf("%s of a %s array: %v, want ErrInvalidArgument", r.reader, r.a.DType, err)
		}
	}
}

func TestArrayNarrowRejects(t *testing.T) {
	shapeErrs := []error{}
	_, err := mlbridge.Float32Array([]float32{1, 2, 3}, 2, 2)
	shapeErrs = append(shapeErrs, err)
	_, err = mlbridge.Int32Array([]int32{1, 2}, 3)
	shapeErrs = append(shapeErrs, err)
	_, err = mlbridge.Uint8Array([]uint8{1, 2}, 1, -2)
	shapeErrs = append(shapeErrs, err)
	_, err = mlbridge.BoolArray([]bool{true}, 2)
	shapeErrs = append(shapeErrs, err)
	_, err = mlbridge.BoolArray(nil, -1)
	shapeErrs = append(shapeErrs, err)
	for i, err := range shapeErrs {
		if !errors.Is(err, mlbridge.ErrInvalidArgument) {
			t.Errorf("shape case %d: %v", i, err)
		}
	}

	// Data that does not match dtype and shape is a damaged array, whatever the reader.
	short32 := []mlbridge.Array{
		{DType: "float32", Shape: []int{2}, Data: make([]byte, 7)},
		{DType: "int32", Shape: []int{2, 2}, Data: make([]byte, 12)},
		{DType: "uint8", Shape: []int{3}, Data: make([]byte, 4)},
		{DType: "bool", Shape: []int{3}, Data: make([]byte, 2)},
		{DType: "float16", Shape: []int{1}, Data: make([]byte, 2)},
	}
	for _, a := range short32 {
		_, e1 := a.Float32s()
		_, e2 := a.Int32s()
		_, e3 := a.Uint8s()
		_, e4 := a.Bools()
		for _, err := range []error{e1, e2, e3, e4} {
			if !errors.Is(err, mlbridge.ErrSerialization) {
				t.Errorf("%s %v with %d bytes: %v", a.DType, a.Shape, len(a.Data), err)
			}
		}
	}

	bad := mlbridge.Array{DType: "bool", Shape: []int{3}, Data: []byte{0, 1, 2}}
	if _, err := bad.Bools(); !errors.Is(err, mlbridge.ErrSerialization) {
		t.Fatalf("bool byte 2: %v", err)
	}
}

// A peer's shape can be anything: negative dimensions, or dimensions whose product overflows
// to a count that matches the data, are refused, never a panic in the reader.
func TestArrayHostileShapes(t *testing.T) {
	for _, a := range []mlbridge.Array{
		{DType: "float64", Shape: []int{1 << 62, 2}, Data: nil},
		{DType: "float64", Shape: []int{1 << 62, 4}, Data: nil},
		{DType: "float64", Shape: []int{-1, -1}, Data: make([]byte, 8)},
		{DType: "uint8", Shape: []int{-2, 0}, Data: nil},
	} {
		if _, err := a.Float64s(); !errors.Is(err, mlbridge.ErrSerialization) {
			t.Errorf("Float64s of shape %v: %v", a.Shape, err)
		}
		if _, err := a.Uint8s(); err == nil {
			t.Errorf("Uint8s of shape %v accepted", a.Shape)
		}
	}
	// The narrow readers decide by dtype before looking at the data: empty or not.
	empty := mlbridge.Array{DType: "float64", Shape: []int{0}}
	if _, err := empty.Float32s(); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Errorf("Float32s of an empty float64 array: %v", err)
	}
	if _, err := (mlbridge.Array{DType: "int64", Shape: []int{0}}).Int32s(); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Errorf("Int32s of an empty int64 array: %v", err)
	}
}
