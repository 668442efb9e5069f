package mlbridge

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/mlbridge/mlbridge/internal/shm"
)

// Array is an n-dimensional array as it travels to and from Python: element type, shape and
// the raw little-endian, C-order bytes — never a list of numbers. Large arrays travel through
// shared memory, not the pipe (array_wire.go): nothing changes for the user, and
// NewSharedArray saves the last copy on the way in. Python bridges read it with
// mlbridge_worker.arrays.from_wire (numpy.frombuffer: no copy); a handler returning a numpy
// array sends one of these.
//
// Constructors: Float64Array, Float32Array, Int64Array, Int32Array, Uint8Array, BoolArray.
// Readers: Float64s, Float32s, Int64s, Int32s, Uint8s, Bools. A reader refuses an array whose
// dtype it cannot hold (ErrInvalidArgument) and one whose Data does not match its dtype and
// shape (ErrSerialization).
type Array struct {
	DType string `msgpack:"dtype"` // float64, float32, int64, int32, ..., uint8, bool
	Shape []int  `msgpack:"shape"`
	Data  []byte `msgpack:"data"`

	// shared is the segment Data lives in when the array was allocated in shared memory
	// (NewSharedArray): it is then sent to a worker without a copy.
	shared *shm.Segment
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

// Float32Array packs data with shape (default: one dimension, len(data)).
func Float32Array(data []float32, shape ...int) (Array, error) {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return newArray("float32", len(data), shape, b)
}

// Int32Array packs data with shape (default: one dimension, len(data)).
func Int32Array(data []int32, shape ...int) (Array, error) {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	}
	return newArray("int32", len(data), shape, b)
}

// Uint8Array packs data with shape (default: one dimension, len(data)). data is copied: the
// Array never aliases the caller's slice, as with the other constructors.
func Uint8Array(data []uint8, shape ...int) (Array, error) {
	return newArray("uint8", len(data), shape, slices.Clone(data))
}

// BoolArray packs data with shape (default: one dimension, len(data)): one byte per element,
// 0 or 1, as numpy stores bool.
func BoolArray(data []bool, shape ...int) (Array, error) {
	b := make([]byte, len(data))
	for i, v := range data {
		if v {
			b[i] = 1
		}
	}
	return newArray("bool", len(data), shape, b)
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
	return readNumbers[float64](a, dtypeSizes, "is not numbers")
}

// Int64s returns the elements of an integer or bool array as int64 (uint64 values above
// math.MaxInt64 wrap).
func (a Array) Int64s() ([]int64, error) {
	return readNumbers[int64](a, integerDTypes, "is not integers")
}

// The narrow readers below convert only what they hold exactly, decided by dtype, never by value:
// an int64 array is refused by Int32s even when every element would fit, so a result's Go type
// does not depend on its data. (Float64s and Int64s are wider and older: see their notes.)

// Float32s returns the elements of a float32 array, or of an int8, int16, uint8, uint16 or
// bool array (all exact in float32), as float32. float64 and wider integers are refused:
// narrowing them would lose precision silently; read them with Float64s.
func (a Array) Float32s() ([]float32, error) {
	return readNumbers[float32](a, exactInFloat32, "does not convert to float32 exactly (use Float64s)")
}

// Int32s returns the elements of an int32 array, or of an int8, int16, uint8, uint16 or bool
// array, as int32. int64, uint32, uint64 and float arrays are refused (use Int64s / Float64s):
// numpy's default integer is int64, so a handler returning plain np.array([1, 2]) needs Int64s.
func (a Array) Int32s() ([]int32, error) {
	return readNumbers[int32](a, exactInInt32, "does not convert to int32 exactly")
}

// The dtypes each reader accepts (their sizes are dtypeSizes').
var (
	integerDTypes  = dtypeSet("int64", "uint64", "int32", "uint32", "int16", "uint16", "int8", "uint8", "bool")
	exactInFloat32 = dtypeSet("float32", "int16", "uint16", "int8", "uint8", "bool")
	exactInInt32   = dtypeSet("int32", "int16", "uint16", "int8", "uint8", "bool")
)

func dtypeSet(names ...string) map[string]int {
	m := make(map[string]int, len(names))
	for _, n := range names {
		m[n] = dtypeSizes[n]
	}
	return m
}

type number interface {
	~int32 | ~int64 | ~float32 | ~float64
}

// readNumbers decodes a's elements as T when its dtype is in accepted (decided by dtype,
// before any element: an empty array of another dtype is refused too).
func readNumbers[T number](a Array, accepted map[string]int, refusal string) ([]T, error) {
	n, size, err := a.layout()
	if err != nil {
		return nil, err
	}
	if _, ok := accepted[a.DType]; !ok {
		return nil, fmt.Errorf("%w: a %s array %s", ErrInvalidArgument, a.DType, refusal)
	}
	out := make([]T, n)
	for i := range out {
		out[i] = elementAs[T](a.DType, a.Data[i*size:])
	}
	return out, nil
}

// elementAs reads the little-endian element of dtype at the start of b, converted to T.
func elementAs[T number](dtype string, b []byte) T {
	le := binary.LittleEndian
	switch dtype {
	case "float64":
		return T(math.Float64frombits(le.Uint64(b)))
	case "float32":
		return T(math.Float32frombits(le.Uint32(b)))
	case "int64":
		return T(int64(le.Uint64(b)))
	case "uint64":
		return T(le.Uint64(b))
	case "int32":
		return T(int32(le.Uint32(b)))
	case "uint32":
		return T(le.Uint32(b))
	case "int16":
		return T(int16(le.Uint16(b)))
	case "uint16":
		return T(le.Uint16(b))
	case "int8":
		return T(int8(b[0]))
	default: // uint8, bool
		return T(b[0])
	}
}

// Uint8s returns the elements of a uint8 or bool array (a copy of Data: bytes, images, masks).
func (a Array) Uint8s() ([]uint8, error) {
	if _, _, err := a.layout(); err != nil {
		return nil, err
	}
	if a.DType != "uint8" && a.DType != "bool" {
		return nil, fmt.Errorf("%w: a %s array is not uint8", ErrInvalidArgument, a.DType)
	}
	return slices.Clone(a.Data), nil
}

// Bools returns the elements of a bool array. A byte other than 0 or 1 is a damaged array
// (ErrSerialization), as the Python side refuses it. Integer arrays are refused, not tested
// against zero: write a != 0 where that is meant.
func (a Array) Bools() ([]bool, error) {
	n, _, err := a.layout()
	if err != nil {
		return nil, err
	}
	if a.DType != "bool" {
		return nil, fmt.Errorf("%w: a %s array is not bool", ErrInvalidArgument, a.DType)
	}
	out := make([]bool, n)
	for i, b := range a.Data {
		if b > 1 {
			return nil, fmt.Errorf("%w: bool array holds byte %d at %d (only 0 or 1)", ErrSerialization, b, i)
		}
		out[i] = b == 1
	}
	return out, nil
}

// checkMapped refuses the Array of a SharedArray that was closed: its Data is unmapped, and
// reading it (to encode it in a call, or to convert it) would crash the process with a fault
// instead of failing.
func (a Array) checkMapped() error {
	if a.shared != nil && a.shared.Closed() {
		return fmt.Errorf("%w: the array of a SharedArray used after its Close", ErrInvalidArgument)
	}
	return nil
}

// layout checks that Data holds exactly the elements the shape says: count and element size.
func (a Array) layout() (n, size int, err error) {
	if err := a.checkMapped(); err != nil {
		return 0, 0, err
	}
	size, ok := dtypeSizes[a.DType]
	bad := func() (int, int, error) {
		return 0, 0, fmt.Errorf("%w: array of %s, shape %v, %d bytes", ErrSerialization, a.DType, a.Shape, len(a.Data))
	}
	if !ok {
		return bad()
	}
	// The shape comes from the peer: no dimension may be negative, and the element count is
	// bounded by the data it must match before it is multiplied further (a shape of
	// [2^62, 2] used to overflow to a count that matched empty data).
	limit := len(a.Data) / size
	n = 1
	for _, d := range a.Shape {
		if d < 0 || (d > 0 && n > limit/d) {
			return bad()
		}
		n *= d
	}
	if len(a.Data) != n*size {
		return bad()
	}
	return n, size, nil
}

var dtypeSizes = map[string]int{
	"float64": 8, "float32": 4, "int64": 8, "int32": 4, "int16": 2, "int8": 1,
	"uint64": 8, "uint32": 4, "uint16": 2, "uint8": 1, "bool": 1,
}
