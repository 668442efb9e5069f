package mlbridge

import (
	"bytes"
	"fmt"
	"reflect"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/mlbridge/mlbridge/internal/wire"
)

// An Array encodes as the map {dtype, shape, data} (spec/protocol.md, "Values"). When the
// frame being built can place bytes in shared memory (a local worker that announced "shm")
// and Data is at least Config.SharedMemoryMin bytes, data is a reference to a shared segment
// instead of the bytes: they never pass through the pipe. Both functions reproduce exactly the
// encoding the struct tags gave before, so small arrays are byte for byte what they were.
//
// They are registered for the type (msgpack.Register) rather than being EncodeMsgpack and
// DecodeMsgpack methods: methods would be promoted to any struct that embeds an Array, which
// would then encode as the array alone, its other fields silently dropped.
func init() {
	msgpack.Register(Array{},
		func(enc *msgpack.Encoder, v reflect.Value) error { return v.Interface().(Array).encode(enc) },
		func(dec *msgpack.Decoder, v reflect.Value) error {
			if v.CanAddr() {
				return v.Addr().Interface().(*Array).decode(dec)
			}
			var a Array
			if err := a.decode(dec); err != nil {
				return err
			}
			v.Set(reflect.ValueOf(a))
			return nil
		})
	// A SharedArray passed as it is travels as its Array (no copy, as sa.Array would).
	msgpack.Register(SharedArray{},
		func(enc *msgpack.Encoder, v reflect.Value) error {
			return v.Interface().(SharedArray).Array.encode(enc)
		},
		nil)
}

func (a Array) encode(enc *msgpack.Encoder) error {
	if err := a.checkMapped(); err != nil {
		return err
	}
	if err := enc.EncodeMapLen(3); err != nil {
		return err
	}
	if err := enc.EncodeString("dtype"); err != nil {
		return err
	}
	if err := enc.EncodeString(a.DType); err != nil {
		return err
	}
	if err := enc.EncodeString("shape"); err != nil {
		return err
	}
	if a.Shape == nil {
		if err := enc.EncodeNil(); err != nil {
			return err
		}
	} else {
		if err := enc.EncodeArrayLen(len(a.Shape)); err != nil {
			return err
		}
		for _, d := range a.Shape {
			if err := enc.EncodeInt(int64(d)); err != nil {
				return err
			}
		}
	}
	if err := enc.EncodeString("data"); err != nil {
		return err
	}
	if sink := wire.SinkOf(enc.Writer()); sink != nil && len(a.Data) > 0 {
		var owner any
		if a.shared != nil {
			owner = a.shared
		}
		ref, ok, err := sink.PlaceBytes(a.Data, owner)
		if err != nil {
			return fmt.Errorf("%w: placing a %d-byte array in shared memory: %w", ErrSerialization, len(a.Data), err)
		}
		if ok {
			_, err := enc.Writer().Write(wire.AppendSharedRef(nil, ref))
			return err
		}
	}
	return enc.EncodeBytes(a.Data)
}

// decode reads an array map. Data reuses the capacity of the Data the array already had, as the
// struct decoding did. Data that arrived in shared memory is copied once, out of the segment
// (see internal/shm.Received for why not aliased).
func (a *Array) decode(dec *msgpack.Decoder) error {
	code, err := dec.PeekCode()
	if err != nil {
		return err
	}
	if code == msgpcode.Nil {
		*a = Array{}
		return dec.DecodeNil()
	}
	n, err := dec.DecodeMapLen()
	if err != nil {
		return err
	}
	out := Array{Data: a.Data[:0]}
	if a.checkMapped() != nil {
		out.Data = nil // a closed SharedArray's memory is unmapped: writing there would fault
	}
	for range max(n, 0) {
		key, err := dec.DecodeString()
		if err != nil {
			return err
		}
		switch key {
		case "dtype":
			out.DType, err = dec.DecodeString()
		case "shape":
			err = dec.Decode(&out.Shape)
		case "data":
			out.Data, err = decodeArrayData(dec, out.Data)
		default:
			err = dec.Skip()
		}
		if err != nil {
			return err
		}
	}
	*a = out
	return nil
}

func decodeArrayData(dec *msgpack.Decoder, dst []byte) ([]byte, error) {
	code, err := dec.PeekCode()
	if err != nil {
		return nil, err
	}
	if !msgpcode.IsExt(code) {
		n, err := dec.DecodeBytesLen()
		if err != nil || n < 0 {
			return nil, err
		}
		if cap(dst) >= n {
			dst = dst[:n]
		} else {
			dst = make([]byte, n)
		}
		return dst, dec.ReadFull(dst)
	}
	id, n, err := dec.DecodeExtHeader()
	if err != nil {
		return nil, err
	}
	if id != wire.ExtShared || n != 24 {
		return nil, fmt.Errorf("%w: array data is msgpack extension %d of %d bytes, not bytes", ErrSerialization, id, n)
	}
	var payload [24]byte
	if err := dec.ReadFull(payload[:]); err != nil {
		return nil, err
	}
	ref, err := wire.ParseSharedRef(payload[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSerialization, err)
	}
	src, ok := dec.Buffered().(wire.SharedSource)
	if !ok {
		return nil, fmt.Errorf("%w: array data in shared segment %d, outside the result that carried it", ErrSerialization, ref.ID)
	}
	b, err := src.SharedBytes(ref, dst)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSerialization, err)
	}
	return b, nil
}

// resultReader is what Result.Decode reads: the result's bytes, and the segments its arrays
// refer to (found by DecodeMsgpack through the decoder's reader).
type resultReader struct {
	*bytes.Reader
	res Result
}

func (r resultReader) SharedBytes(ref wire.SharedRef, dst []byte) ([]byte, error) {
	if r.res.shared == nil {
		return nil, fmt.Errorf("the result refers to shared segment %d but carried none", ref.ID)
	}
	return r.res.shared.CopyOut(ref.ID, ref.Offset, ref.Length, dst)
}
