package mlbridge_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge"
)

// numpyValues is what echo.py's numpy_values returns: numpy scalars arrive as plain numbers and
// bools, numpy arrays as Array maps, nested ones too.
type numpyValues struct {
	F32    float64        `msgpack:"f32"`
	I64    int64          `msgpack:"i64"`
	U8     uint8          `msgpack:"u8"`
	Yes    bool           `msgpack:"yes"`
	Matrix mlbridge.Array `msgpack:"matrix"`
	Pixels mlbridge.Array `msgpack:"pixels"`
	Mask   mlbridge.Array `msgpack:"mask"`
	IDs    mlbridge.Array `msgpack:"ids"`
	Nested []struct {
		Score float64        `msgpack:"score"`
		Col   mlbridge.Array `msgpack:"col"`
	} `msgpack:"nested"`
}

func TestNumpyValuesFromWorker(t *testing.T) {
	b := open(t)
	v, err := mlbridge.Decode[numpyValues](b.Call(context.Background(), "numpy_values", nil))
	if err != nil {
		if strings.Contains(err.Error(), "No module named 'numpy'") {
			t.Skip("numpy is not installed for this interpreter")
		}
		t.Fatalf("numpy_values: %v", err)
	}
	if v.F32 != 1.5 || v.I64 != -(1<<40) || v.U8 != 255 || !v.Yes {
		t.Fatalf("scalars: %+v", v)
	}

	if v.Matrix.DType != "float32" || !slices.Equal(v.Matrix.Shape, []int{2, 3}) {
		t.Fatalf("matrix: %s %v", v.Matrix.DType, v.Matrix.Shape)
	}
	if f, err := v.Matrix.Float32s(); err != nil || !slices.Equal(f, []float32{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("matrix data: %v %v", f, err)
	}
	if p, err := v.Pixels.Uint8s(); err != nil || v.Pixels.DType != "uint8" || !slices.Equal(p, []uint8{0, 128, 255}) {
		t.Fatalf("pixels: %s %v %v", v.Pixels.DType, p, err)
	}
	if m, err := v.Mask.Bools(); err != nil || !slices.Equal(v.Mask.Shape, []int{2, 2}) ||
		!slices.Equal(m, []bool{true, false, false, true}) {
		t.Fatalf("mask: %v %v %v", v.Mask.Shape, m, err)
	}
	if ids, err := v.IDs.Int32s(); err != nil || v.IDs.DType != "int32" || !slices.Equal(ids, []int32{7, -7}) {
		t.Fatalf("big-endian ids: %s %v %v", v.IDs.DType, ids, err)
	}
	if len(v.Nested) != 1 || v.Nested[0].Score != 0.25 {
		t.Fatalf("nested: %+v", v.Nested)
	}
	if c, err := v.Nested[0].Col.Int64s(); err != nil || !slices.Equal(c, []int64{0, 2}) { // a strided view
		t.Fatalf("nested strided column: %v %v", c, err)
	}
}
