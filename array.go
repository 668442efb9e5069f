package mlbridge

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Array is an n-dimensional array as it travels to and from Python: element type, shape and
// the raw little-endian, C-order bytes — never a list of numbers. Python bridges read it with
// mlbridge_worker.arrays.from_wire (numpy.frombuffer: no copy).
type Array struct {
	DType string `msgpack:"dtype"` // float64, float32, int64, int32, ..., uint8, bool
	Shape []int  `msgpack:"shape"`
	Data  []byte `msgpack:"data"`
}

// Float64Array packs data with shape (default: one dimension, len(data)).
func Float64Array(data []float64, shape ...int) (Array, error) {
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return newArray("float64", len(data), shape, b)
}

// Int64Array packs data with shape (default: one dimension, len(data)).
func Int64Array(data []int64, shape ...int) (Array, error) {
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return newArray("int64", len(data), shape, b)
}

func newArray(dtype string, n int, shape []int, data []byte) (Array, error) {
	if len(shape) == 0 {
		shape = []int{n}
	}
	size := 1
	for _, d := range shape {
		if d < 0 {
			return Array{}, fmt.Errorf("%w: negative dimension in shape %v", ErrInvalidArgument, shape)
		}
		size *= d
	}
	if size != n {
		return Array{}, fmt.Errorf("%w: shape %v holds %d elements, have %d", ErrInvalidArgument, shape, size, n)
	}
	return Array{DType: dtype, Shape: shape, Data: data}, nil
}

// Len is the number of elements.
func (a Array) Len() int {
	n := 1
	for _, d := range a.Shape {
		n *= d
	}
	return n
}

// Float64s returns the elements of a float64, float32 or integer array as float64.
func (a Array) Float64s() ([]float64, error) {
	n, size, err := a.layout()
	if err != nil {
		return nil, err
	}
	out := make([]float64, n)
	le := binary.LittleEndian
	for i := range out {
		b := a.Data[i*size:]
		switch a.DType {
		case "float64":
			out[i] = math.Float64frombits(le.Uint64(b))
		case "float32":
			out[i] = float64(math.Float32frombits(le.Uint32(b)))
		case "int64":
			out[i] = float64(int64(le.Uint64(b)))
		case "int32":
			out[i] = float64(int32(le.Uint32(b)))
		case "int16":
			out[i] = float64(int16(le.Uint16(b)))
		case "int8":
			out[i] = float64(int8(b[0]))
		case "uint64":
			out[i] = float64(le.Uint64(b))
		case "uint32":
			out[i] = float64(le.Uint32(b))
		case "uint16":
			out[i] = float64(le.Uint16(b))
		case "uint8", "bool":
			out[i] = float64(b[0])
		}
	}
	return out, nil
}

// Int64s returns the elements of an integer or bool array as int64 (uint64 values above
// math.MaxInt64 wrap).
func (a Array) Int64s() ([]int64, error) {
	n, size, err := a.layout()
	if err != nil {
		return nil, err
	}
	out := make([]int64, n)
	le := binary.LittleEndian
	for i := range out {
		b := a.Data[i*size:]
		switch a.DType {
		case "int64", "uint64":
			out[i] = int64(le.Uint64(b))
		case "int32":
			out[i] = int64(int32(le.Uint32(b)))
		case "uint32":
			out[i] = int64(le.Uint32(b))
		case "int16":
			out[i] = int64(int16(le.Uint16(b)))
		case "uint16":
			out[i] = int64(le.Uint16(b))
		case "int8":
			out[i] = int64(int8(b[0]))
		case "uint8", "bool":
			out[i] = int64(b[0])
		default:
			return nil, fmt.Errorf("%w: a %s array is not integers", ErrInvalidArgument, a.DType)
		}
	}
	return out, nil
}

// layout checks that Data holds exactly the elements the shape says: count and element size.
func (a Array) layout() (n, size int, err error) {
	n = a.Len()
	size, ok := dtypeSizes[a.DType]
	if !ok || len(a.Data) != n*size {
		return 0, 0, fmt.Errorf("%w: array of %s, shape %v, %d bytes", ErrSerialization, a.DType, a.Shape, len(a.Data))
	}
	return n, size, nil
}

var dtypeSizes = map[string]int{
	"float64": 8, "float32": 4, "int64": 8, "int32": 4, "int16": 2, "int8": 1,
	"uint64": 8, "uint32": 4, "uint16": 2, "uint8": 1, "bool": 1,
}
