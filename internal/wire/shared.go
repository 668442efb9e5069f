package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tinylib/msgp/msgp"
)

// Large byte payloads (array data) may travel out of band, in shared memory (internal/shm):
// in the frame, the bytes are replaced by a reference, the msgpack extension ExtShared whose 24
// bytes are the segment's id, the offset and the length, each a big-endian uint64. The message
// lists the ids it refers to in its "shm" field (see spec/protocol.md, "Shared memory").
const (
	ExtShared    = 2
	sharedRefLen = 24
)

// SharedRef names bytes held in a shared segment.
type SharedRef struct {
	ID, Offset, Length uint64
}

// AppendSharedRef appends ref's extension: ext 8, length 24, type ExtShared.
func AppendSharedRef(b []byte, ref SharedRef) []byte {
	b = append(b, 0xc7, sharedRefLen, ExtShared)
	b = binary.BigEndian.AppendUint64(b, ref.ID)
	b = binary.BigEndian.AppendUint64(b, ref.Offset)
	return binary.BigEndian.AppendUint64(b, ref.Length)
}

// ParseSharedRef reads a reference from its extension payload.
func ParseSharedRef(payload []byte) (SharedRef, error) {
	if len(payload) != sharedRefLen {
		return SharedRef{}, fmt.Errorf("%w: a shared-memory reference of %d bytes (want %d)", ErrMalformedValue, len(payload), sharedRefLen)
	}
	return SharedRef{
		ID:     binary.BigEndian.Uint64(payload),
		Offset: binary.BigEndian.Uint64(payload[8:]),
		Length: binary.BigEndian.Uint64(payload[16:]),
	}, nil
}

// ErrMalformedValue reports a value that is not what its type promises.
var ErrMalformedValue = errors.New("malformed value")

// SharedSink places large byte payloads in shared memory while a request is encoded: the
// Encoder's writer offers it (see Encoder.SetSink) and mlbridge.Array's encoder asks it.
type SharedSink interface {
	// PlaceBytes returns the reference under which data will reach the peer, ok false to
	// send data inline (too small, or no shared memory here). owner, when not nil, is the
	// segment data already lives in (an array allocated in shared memory): nothing is copied.
	PlaceBytes(data []byte, owner any) (ref SharedRef, ok bool, err error)
}

// SharedSource resolves references while an answer is decoded: Result's decoder reads from one.
type SharedSource interface {
	SharedBytes(ref SharedRef, dst []byte) ([]byte, error)
}

// InlineShared returns raw with every shared reference replaced by its bytes (a msgpack bin),
// for consumers of raw msgpack that know nothing of segments.
func InlineShared(raw []byte, bytesOf func(SharedRef) ([]byte, error)) ([]byte, error) {
	out := make([]byte, 0, len(raw))
	out, rest, err := inlineValue(out, raw, bytesOf, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the value", ErrMalformedValue, len(rest))
	}
	return out, nil
}

func inlineValue(out, b []byte, bytesOf func(SharedRef) ([]byte, error), depth int) ([]byte, []byte, error) {
	if depth > MaxDepth {
		return nil, nil, fmt.Errorf("%w: nested more than %d deep", ErrMalformedValue, MaxDepth)
	}
	switch msgp.NextType(b) {
	case msgp.MapType, msgp.ArrayType:
		var n uint32
		var rest []byte
		var err error
		isMap := msgp.NextType(b) == msgp.MapType
		if isMap {
			n, rest, err = msgp.ReadMapHeaderBytes(b)
			out = msgp.AppendMapHeader(out, n)
			n *= 2
		} else {
			n, rest, err = msgp.ReadArrayHeaderBytes(b)
			out = msgp.AppendArrayHeader(out, n)
		}
		if err != nil {
			return nil, nil, err
		}
		for range n {
			if out, rest, err = inlineValue(out, rest, bytesOf, depth+1); err != nil {
				return nil, nil, err
			}
		}
		return out, rest, nil
	case msgp.ExtensionType:
		if len(b) >= 3+sharedRefLen && b[0] == 0xc7 && b[1] == sharedRefLen && b[2] == ExtShared {
			ref, _ := ParseSharedRef(b[3 : 3+sharedRefLen])
			data, err := bytesOf(ref)
			if err != nil {
				return nil, nil, err
			}
			return msgp.AppendBytes(out, data), b[3+sharedRefLen:], nil
		}
	}
	rest, err := msgp.Skip(b)
	if err != nil {
		return nil, nil, err
	}
	return append(out, b[:len(b)-len(rest)]...), rest, nil
}
