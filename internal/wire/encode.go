package wire

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/tinylib/msgp/msgp"
	"github.com/vmihailenco/msgpack/v5"
)

// ErrArgsNotMap is returned when a request's arguments do not encode as a msgpack map.
var ErrArgsNotMap = errors.New("arguments must encode as a map (a struct, a map with string keys, or nil)")

// Encoder builds whole frames (length prefix included). It is not safe for concurrent use;
// get one from GetEncoder and return it with PutEncoder.
type Encoder struct {
	buf      frameBuf
	enc      *msgpack.Encoder
	args     scanner // follows a request's args as they are encoded
	maxFrame int
}

var encoderPool = sync.Pool{New: func() any { return NewEncoder() }}

// GetEncoder takes an Encoder from a shared pool.
func GetEncoder() *Encoder { return encoderPool.Get().(*Encoder) }

// PutEncoder returns e to the pool; frames it returned must no longer be used.
func PutEncoder(e *Encoder) {
	if cap(e.buf.b) > 1<<20 {
		return // don't keep huge buffers alive
	}
	e.maxFrame = 0
	e.buf.sink = nil
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

// SetMaxFrame sets the largest payload the frames e builds may have (DefaultMaxFrame if
// n <= 0, and again once e is back in the pool). A request that would be larger fails
// with ErrFrameTooLarge at the write that would pass it, before that write is copied.
func (e *Encoder) SetMaxFrame(n int) { e.maxFrame = n }

// SetSink lets large byte payloads of the next request go to shared memory (nil: inline). A
// value's own encoder finds it through the msgpack encoder's writer (see SinkOf).
func (e *Encoder) SetSink(s SharedSink) { e.buf.sink = s }

// SinkOf is the shared-memory sink of the frame w is building, or nil.
func SinkOf(w io.Writer) SharedSink {
	if f, ok := w.(*frameBuf); ok {
		return f.sink
	}
	return nil
}

// NewValueEncoder configures a msgpack encoder for user values.
func NewValueEncoder(w io.Writer) *msgpack.Encoder {
	enc := msgpack.NewEncoder(w)
	enc.UseCompactInts(true)
	enc.SetCustomStructTag("json")
	return enc
}

// begin starts a frame of limit bytes at most. Only requests carry values of any size:
// the other frames are a few bytes, built without a limit (their writes cannot fail).
func (e *Encoder) begin(fields int, t string, limit int) {
	e.buf.reset(limit)
	e.buf.b = append(e.buf.b, 0, 0, 0, 0)
	_ = e.enc.EncodeMapLen(fields)
	_ = e.enc.EncodeString("t")
	_ = e.enc.EncodeString(t)
}

func (e *Encoder) finish() []byte {
	b := e.buf.b
	putHeader(b)
	return b
}

func (e *Encoder) uintField(key string, v uint64) {
	_ = e.enc.EncodeString(key)
	_ = e.enc.EncodeUint(v)
}

// Req encodes a request. args may be nil, a msgpack.RawMessage holding a map, or any
// value that encodes as a map. deadline is unix milliseconds (0: none).
//
// args are checked while they are encoded, so a refusal costs no more than the bytes
// written before it: ErrFrameTooLarge when the frame would pass the max frame size (see
// SetMaxFrame), ErrTooDeep past MaxDepth (a cyclic value included), ErrArgsNotMap.
func (e *Encoder) Req(id uint64, op string, args any, deadline uint64, stream bool) ([]byte, error) {
	return e.ReqTraced(id, op, args, deadline, stream, Trace{})
}

// ReqTraced is Req carrying the caller's trace context (tr.Parent empty: none, and then the
// frame is byte for byte what Req builds).
func (e *Encoder) ReqTraced(id uint64, op string, args any, deadline uint64, stream bool, tr Trace) ([]byte, error) {
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
	fields += tr.fields()
	max := e.maxFrame
	if max <= 0 {
		max = DefaultMaxFrame
	}
	e.begin(fields, TypeReq, headerLen+max)
	e.uintField("id", id)
	_ = e.enc.EncodeString("op")
	_ = e.enc.EncodeString(op)
	if args != nil {
		_ = e.enc.EncodeString("args")
		if err := e.encodeArgs(args); err != nil {
			return nil, err
		}
	}
	if deadline != 0 {
		e.uintField("deadline", deadline)
	}
	if stream {
		_ = e.enc.EncodeString("stream")
		_ = e.enc.EncodeBool(true)
	}
	e.traceFields(tr)
	if e.buf.err != nil {
		return nil, e.buf.err
	}
	return e.finish(), nil
}

// encodeArgs writes args through the scanner, which refuses them at the first header that
// breaks a rule: a value that is not a map (or nil), a container past MaxDepth.
func (e *Encoder) encodeArgs(args any) error {
	if e.buf.err != nil {
		return e.buf.err
	}
	e.args.reset()
	e.args.mapOnly = true
	e.buf.scan = &e.args
	var err error
	if raw, ok := args.(msgpack.RawMessage); ok {
		_, err = e.buf.Write(raw)
	} else {
		err = e.encodeUser(args)
	}
	e.buf.scan = nil
	if err == nil {
		err = e.buf.err // an error some encoder path did not return
	}
	switch {
	case err != nil:
		return err
	case !e.args.complete():
		return errors.New("arguments are not one whole msgpack value")
	}
	return nil
}

// encodeUser encodes a value the user gave (arguments, a host function's result). A panic in
// the value's own EncodeMsgpack or MarshalMsgpack is an error of this value: it may run on a
// goroutine of the library's (Submit, a host call), where it would end the process.
func (e *Encoder) encodeUser(v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("encoding a %T panicked: %v", v, r)
		}
	}()
	return e.enc.Encode(v)
}

// Cancel encodes a cancel for request id.
func (e *Encoder) Cancel(id uint64) []byte {
	e.begin(2, TypeCancel, maxInt)
	e.uintField("id", id)
	return e.finish()
}

// Ping encodes a heartbeat; Pong its answer.
func (e *Encoder) Ping(seq uint64) []byte {
	e.begin(2, TypePing, maxInt)
	e.uintField("seq", seq)
	return e.finish()
}

// Pong answers a ping with its seq.
func (e *Encoder) Pong(seq uint64) []byte {
	e.begin(2, TypePong, maxInt)
	e.uintField("seq", seq)
	return e.finish()
}

// Shutdown asks the worker to exit after graceMs milliseconds at most.
func (e *Encoder) Shutdown(graceMs uint64) []byte {
	e.begin(2, TypeShutdown, maxInt)
	e.uintField("grace", graceMs)
	return e.finish()
}

// Hello is the host's first frame: the versions it speaks and its max frame size.
func (e *Encoder) Hello(versions []uint64, maxFrame uint64) []byte {
	e.begin(3, TypeHello, maxInt)
	_ = e.enc.EncodeString("versions")
	_ = e.enc.EncodeArrayLen(len(versions))
	for _, v := range versions {
		_ = e.enc.EncodeUint(v)
	}
	e.uintField("max_frame", maxFrame)
	return e.finish()
}

// Value encodes any value as a frame payload without a prefix (tests, vectors, CLI). It
// applies no limit.
func (e *Encoder) Value(v any) ([]byte, error) {
	e.buf.reset(maxInt)
	if err := e.enc.Encode(v); err != nil {
		return nil, err
	}
	return e.buf.b, nil
}

const maxInt = int(^uint(0) >> 1)

// frameBuf is the Encoder's output. It refuses a write that would pass limit before
// copying any of it, so a 1 GB []byte argument is refused having allocated nothing; and
// while scan is set it feeds every write to it first. Its first error sticks: writes after
// it are refused too (some encoder paths ignore errors, Req checks err at the end).
type frameBuf struct {
	b     []byte
	limit int
	err   error
	scan  *scanner
	sink  SharedSink
	one   [1]byte
}

func (f *frameBuf) reset(limit int) {
	f.b, f.limit, f.err, f.scan = f.b[:0], limit, nil, nil
}

func (f *frameBuf) Write(p []byte) (int, error) {
	// One test on the hot path: no error, room, and no scanner (the envelope's fields).
	if f.err != nil || f.scan != nil || len(p) > f.limit-len(f.b) {
		if err := f.check(p); err != nil {
			return 0, err
		}
	}
	if len(f.b)+len(p) > cap(f.b) {
		f.grow(len(p))
	}
	f.b = append(f.b, p...)
	return len(p), nil
}

func (f *frameBuf) WriteByte(c byte) error {
	if f.err != nil || f.scan != nil || len(f.b) >= f.limit {
		f.one[0] = c
		if err := f.check(f.one[:]); err != nil {
			return err
		}
	}
	if len(f.b) == cap(f.b) {
		f.grow(1)
	}
	f.b = append(f.b, c)
	return nil
}

// check is the slow path of a write: a sticky error, the limit, the scanner.
func (f *frameBuf) check(p []byte) error {
	if f.err != nil {
		return f.err
	}
	if len(p) > f.limit-len(f.b) {
		f.err = f.tooLarge(len(p))
		return f.err
	}
	if err := f.scan.feed(p); err != nil {
		f.err = err
		return err
	}
	return nil
}

//go:noinline
func (f *frameBuf) tooLarge(n int) error {
	return fmt.Errorf("%w: the %d-byte limit (a %d-byte write at byte %d of the frame)",
		ErrFrameTooLarge, f.limit-headerLen, n, len(f.b))
}

// grow makes room for n more bytes: doubling, as append does for small slices, but never
// past the limit, so a frame that ends up just under it never reserves twice as much.
func (f *frameBuf) grow(n int) {
	c := min(max(2*cap(f.b), len(f.b)+n, 512), f.limit)
	nb := make([]byte, len(f.b), c)
	copy(nb, f.b)
	f.b = nb
}

func isMapOrNil(b []byte) bool {
	t := msgp.NextType(b)
	return t == msgp.MapType || t == msgp.NilType
}
