package mlbridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge/internal/shm"
	"github.com/mlbridge/mlbridge/internal/wire"
	"github.com/mlbridge/mlbridge/internal/worker"
)

// Result is a value returned by Python, still in msgpack form: decode it once, straight
// into the type you want.
type Result struct {
	raw msgpack.RawMessage
	// shared holds the segments of arrays that arrived in shared memory (nil: none); raw
	// refers to them (wire.SharedRef).
	shared *shm.Received
}

// Decode unmarshals the result into v. Struct fields match by `msgpack` tag, then `json`
// tag, then name. A result that does not fit v is ErrSerialization.
func (r Result) Decode(v any) error {
	var err error
	if len(r.raw) == 0 {
		err = msgpack.Unmarshal([]byte{0xc0}, v) // a stream end or empty result is nil
	} else {
		dec := msgpack.GetDecoder()
		defer msgpack.PutDecoder(dec)
		defer dec.SetMapDecoder(nil) // Reset does not clear it
		dec.Reset(resultReader{Reader: bytes.NewReader(r.raw), res: r})
		dec.SetCustomStructTag("json")
		dec.SetMapDecoder(wire.DecodeMapValue) // into any: a dict with int keys is a map[any]any
		err = dec.Decode(v)
	}
	if err != nil {
		if errors.Is(err, ErrSerialization) || errors.Is(err, ErrInvalidArgument) {
			return err // an array's own typed error
		}
		// the result does not fit v (a string into an int, a list into an Array...)
		return fmt.Errorf("%w: decoding the result into %T: %w", ErrSerialization, v, err)
	}
	return nil
}

// Value decodes the result into plain Go values: nil, bool, integers in the width msgpack
// carried them (int8…int64, uint8…uint64: 1 is an int8), float32/float64, string, []byte,
// []any, map[string]any, and map[any]any for a dict with a key that is not a string
// (Python's {0: "setosa"}). Decode into a typed value to choose the types. A key Go cannot
// use in a map (a Python tuple) is ErrSerialization.
func (r Result) Value() (any, error) {
	if len(r.raw) == 0 {
		return nil, nil
	}
	raw, err := r.inlined()
	if err != nil {
		return nil, err
	}
	v, err := wire.DecodeValue(raw)
	if err != nil {
		// valid msgpack these types cannot hold: a dict key Go cannot use in a map (a tuple)
		return nil, fmt.Errorf("%w: the result as plain Go values (Decode into a typed value instead): %w",
			ErrSerialization, err)
	}
	return v, nil
}

// Raw returns the msgpack encoding of the result. Arrays that arrived in shared memory are
// copied into it as plain bytes, so it stands alone (forwarding it elsewhere works); if that
// fails, Raw returns nil: code that forwards a result should call RawErr, which says why.
func (r Result) Raw() []byte {
	raw, err := r.inlined()
	if err != nil {
		return nil
	}
	return raw
}

// RawErr is Raw with the reason it failed: arrays that arrived in shared memory could not be
// copied in (an ErrSerialization).
func (r Result) RawErr() ([]byte, error) { return r.inlined() }

func (r Result) inlined() ([]byte, error) {
	if r.shared == nil {
		return r.raw, nil
	}
	raw, err := wire.InlineShared(r.raw, func(ref wire.SharedRef) ([]byte, error) {
		return r.shared.Bytes(ref.ID, ref.Offset, ref.Length)
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSerialization, err)
	}
	return raw, nil
}

// Decode is Result.Decode as a function, to wrap a call in one line:
//
//	sum, err := mlbridge.Decode[int](b.Call(ctx, "add", map[string]any{"a": 1, "b": 2}))
func Decode[T any](r Result, err error) (T, error) {
	var v T
	if err != nil {
		return v, err
	}
	err = r.Decode(&v)
	return v, err
}

// resultOf waits for c's result, with the segments its arrays arrived in.
func resultOf(ctx context.Context, c *worker.Call) (Result, error) {
	raw, err := c.Result(ctx)
	return Result{raw: raw, shared: c.Shared()}, err
}
