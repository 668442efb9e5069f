package mlbridge

import (
	"bytes"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge/internal/wire"
)

// Result is a value returned by Python, still in msgpack form: decode it once, straight
// into the type you want.
type Result struct {
	raw msgpack.RawMessage
}

// Decode unmarshals the result into v. Struct fields match by `msgpack` tag, then `json`
// tag, then name.
func (r Result) Decode(v any) error {
	if len(r.raw) == 0 {
		return msgpack.Unmarshal([]byte{0xc0}, v) // a stream end or empty result is nil
	}
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(bytes.NewReader(r.raw))
	dec.SetCustomStructTag("json")
	return dec.Decode(v)
}

// Value decodes the result into plain Go values: nil, bool, int64/uint64, float,
// string, []byte, []any, map[string]any.
func (r Result) Value() (any, error) {
	if len(r.raw) == 0 {
		return nil, nil
	}
	return wire.DecodeValue(r.raw)
}

// Raw returns the msgpack encoding of the result.
func (r Result) Raw() []byte { return r.raw }

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
