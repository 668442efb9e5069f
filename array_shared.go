package mlbridge

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/mlbridge/mlbridge/internal/shm"
)

// SharedArray is an Array whose bytes live in shared memory from the start: passing its Array
// to a worker copies nothing (the worker maps the same memory), where an ordinary large
// Array is copied once into a fresh segment. Fill it through Data or a typed view, pass
// s.Array in a call's arguments as usual, and Close it when done.
//
// The worker sees the memory read-only, for the duration of the call; a bridge that keeps
// the numpy array past the call sees later writes. A handler that returns the array it received
// unchanged sends back this same memory: the Result reads it when it is decoded, so writes
// made between the call's return and the decode show in it (decode first, then write). After Close the Array's Data must not be used
// (it is unmapped, as with any mmap): passing the Array in a call, or reading it with Float64s
// and the other readers or a typed view, is then ErrInvalidArgument (not while Close runs concurrently).
type SharedArray struct {
	Array
	seg *shm.Segment
}

// NewSharedArray allocates a zero-filled array of dtype and shape (at least one dimension) in
// shared memory. On Windows it fails: there is no shared memory with workers there.
func NewSharedArray(dtype string, shape ...int) (*SharedArray, error) {
	size, ok := dtypeSizes[dtype]
	if !ok {
		return nil, fmt.Errorf("%w: unknown dtype %q", ErrInvalidArgument, dtype)
	}
	if len(shape) == 0 {
		return nil, fmt.Errorf("%w: a shared array needs a shape", ErrInvalidArgument)
	}
	n := 1
	for _, d := range shape {
		if d < 0 || (d > 0 && n > (1<<62)/size/d) {
			return nil, fmt.Errorf("%w: shape %v", ErrInvalidArgument, shape)
		}
		n *= d
	}
	seg, err := shm.Create(max(n*size, 1))
	if err != nil {
		return nil, fmt.Errorf("mlbridge: shared array: %w", err)
	}
	a := Array{DType: dtype, Shape: append([]int(nil), shape...), Data: seg.Bytes()[:n*size], shared: seg}
	return &SharedArray{Array: a, seg: seg}, nil
}

// NewSharedFloat64Array is NewSharedArray("float64", shape...).
func NewSharedFloat64Array(shape ...int) (*SharedArray, error) {
	return NewSharedArray("float64", shape...)
}

// Close releases the shared memory (a worker still holding a view keeps its own mapping).
func (s *SharedArray) Close() error { return s.seg.Close() }

// Float64View is Data as []float64, no copy: writes go straight to the shared memory. It
// fails for another dtype, or on a big-endian host (the wire is little-endian).
func (s *SharedArray) Float64View() ([]float64, error) { return view[float64](s, "float64") }

// Float32View is Data as []float32, no copy (see Float64View).
func (s *SharedArray) Float32View() ([]float32, error) { return view[float32](s, "float32") }

// Int64View is Data as []int64, no copy (see Float64View).
func (s *SharedArray) Int64View() ([]int64, error) { return view[int64](s, "int64") }

// Int32View is Data as []int32, no copy (see Float64View).
func (s *SharedArray) Int32View() ([]int32, error) { return view[int32](s, "int32") }

func view[T number](s *SharedArray, dtype string) ([]T, error) {
	if err := s.checkMapped(); err != nil {
		return nil, err
	}
	if s.DType != dtype {
		return nil, fmt.Errorf("%w: a %s array has no %s view", ErrInvalidArgument, s.DType, dtype)
	}
	if !littleEndian() {
		return nil, fmt.Errorf("%w: typed views need a little-endian host", ErrInvalidArgument)
	}
	var zero T
	n := len(s.Data) / int(unsafe.Sizeof(zero))
	if n == 0 {
		return []T{}, nil
	}
	// The mapping is page-aligned, so every element is aligned.
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(s.Data))), n), nil
}

func littleEndian() bool {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], 1)
	return b[0] == 1
}
