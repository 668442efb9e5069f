package wire

import (
	"bytes"
	"errors"
	"github.com/tinylib/msgp/msgp"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// ErrArgsNotMap is returned when a request's arguments do not encode as a msgpack map.
var ErrArgsNotMap = errors.New("arguments must encode as a map (a struct, a map with string keys, or nil)")

// Encoder builds whole frames (length prefix included). It is not safe for concurrent use;
// get one from GetEncoder and return it with PutEncoder.
type Encoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

var encoderPool = sync.Pool{New: func() any { return NewEncoder() }}

// GetEncoder takes an Encoder from a shared pool.
func GetEncoder() *Encoder { return encoderPool.Get().(*Encoder) }

// PutEncoder returns e to the pool; frames it returned must no longer be used.
func PutEncoder(e *Encoder) {
	if e.buf.Cap() > 1<<20 {
		return // don't keep huge buffers alive
	}
	encoderPool.Put(e)
}

// NewEncoder returns an Encoder that encodes Go values the way the rest of mlbridge
// decodes them: compact integers, and `json` struct tags honoured when there is no
// `msgpack` tag.
func NewEncoder() *Encoder {
	e := &Encoder{}
	e.enc = NewValueEncoder(&e.buf)
	return e
}

// NewValueEncoder configures a msgpack encoder for user values.
func NewValueEncoder(w *bytes.Buffer) *msgpack.Encoder {
	enc := msgpack.NewEncoder(w)
	enc.UseCompactInts(true)
	enc.SetCustomStructTag("json")
	return enc
}

func (e *Encoder) begin(fields int, t string) {
	e.buf.Reset()
	e.buf.Write([]byte{0, 0, 0, 0})
	_ = e.enc.EncodeMapLen(fields)
	_ = e.enc.EncodeString("t")
	_ = e.enc.EncodeString(t)
}

func (e *Encoder) finish() []byte {
	b := e.buf.Bytes()
	putHeader(b)
	return b
}

func (e *Encoder) uintField(key string, v uint64) {
	_ = e.enc.EncodeString(key)
	_ = e.enc.EncodeUint(v)
}

// Req encodes a request. args may be nil, a msgpack.RawMessage holding a map, or any
// value that encodes as a map. deadline is unix milliseconds (0: none).
func (e *Encoder) Req(id uint64, op string, args any, deadline uint64, stream bool) ([]byte, error) {
	fields := 3
	if args != nil {
		fields++
	}
	if deadline != 0 {
		fields++
	}
	if stream {
		fields++
	}
	e.begin(fields, TypeReq)
	e.uintField("id", id)
	_ = e.enc.EncodeString("op")
	_ = e.enc.EncodeString(op)
	if args != nil {
		_ = e.enc.EncodeString("args")
		start := e.buf.Len()
		var err error
		if raw, ok := args.(msgpack.RawMessage); ok {
			_, err = e.buf.Write(raw)
		} else {
			err = e.enc.Encode(args)
		}
		if err != nil {
			return nil, err
		}
		if b := e.buf.Bytes(); start >= len(b) || !isMapOrNil(b[start:]) {
			return nil, ErrArgsNotMap
		}
	}
	if deadline != 0 {
		e.uintField("deadline", deadline)
	}
	if stream {
		_ = e.enc.EncodeString("stream")
		_ = e.enc.EncodeBool(true)
	}
	return e.finish(), nil
}

// Cancel encodes a cancel for request id.
func (e *Encoder) Cancel(id uint64) []byte {
	e.begin(2, TypeCancel)
	e.uintField("id", id)
	return e.finish()
}

// Ping encodes a heartbeat; Pong its answer.
func (e *Encoder) Ping(seq uint64) []byte {
	e.begin(2, TypePing)
	e.uintField("seq", seq)
	return e.finish()
}

// Pong answers a ping with its seq.
func (e *Encoder) Pong(seq uint64) []byte {
	e.begin(2, TypePong)
	e.uintField("seq", seq)
	return e.finish()
}

// Shutdown asks the worker to exit after graceMs milliseconds at most.
func (e *Encoder) Shutdown(graceMs uint64) []byte {
	e.begin(2, TypeShutdown)
	e.uintField("grace", graceMs)
	return e.finish()
}

// Hello is the host's first frame: the versions it speaks and its max frame size.
func (e *Encoder) Hello(versions []uint64, maxFrame uint64) []byte {
	e.begin(3, TypeHello)
	_ = e.enc.EncodeString("versions")
	_ = e.enc.EncodeArrayLen(len(versions))
	for _, v := range versions {
		_ = e.enc.EncodeUint(v)
	}
	e.uintField("max_frame", maxFrame)
	return e.finish()
}

// Value encodes any value as a frame payload without a prefix (tests, vectors, CLI).
func (e *Encoder) Value(v any) ([]byte, error) {
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		return nil, err
	}
	return e.buf.Bytes(), nil
}

func isMapOrNil(b []byte) bool {
	t := msgp.NextType(b)
	return t == msgp.MapType || t == msgp.NilType
}
