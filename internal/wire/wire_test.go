package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestReqRoundTrip(t *testing.T) {
	enc := NewEncoder()
	args := map[string]any{"x": []byte{1, 2}, "y": "héllo", "n": int64(-5)}
	frame, err := enc.Req(42, "op.name", args, 1700000000123, true)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := SplitFrame(frame, 0)
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeMessage(payload, HostToWorker)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != TypeReq || m.ID != 42 || m.Op != "op.name" || m.Deadline != 1700000000123 || !m.Stream {
		t.Fatalf("decoded %+v", m)
	}
	var got map[string]any
	if err := msgpack.Unmarshal(m.Args, &got); err != nil {
		t.Fatal(err)
	}
	if got["y"] != "héllo" || !bytes.Equal(got["x"].([]byte), []byte{1, 2}) || got["n"] != int8(-5) {
		t.Fatalf("args %#v", got)
	}
}

func TestReqArgsMustBeMap(t *testing.T) {
	enc := NewEncoder()
	for _, args := range []any{42, "s", []int{1}} {
		if _, err := enc.Req(1, "x", args, 0, false); !errors.Is(err, ErrArgsNotMap) {
			t.Errorf("args %v: got %v", args, err)
		}
	}
	type S struct {
		A int `json:"a"`
	}
	frame, err := enc.Req(1, "x", S{A: 3}, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := DecodeMessage(frame[4:], HostToWorker)
	var got map[string]int
	if err := msgpack.Unmarshal(m.Args, &got); err != nil || got["a"] != 3 {
		t.Fatalf("struct args with json tag: %v %v", got, err)
	}
}

func TestHostMessagesDecode(t *testing.T) {
	enc := NewEncoder()
	// Frames returned by an Encoder live until its next call: copy each one.
	own := func(b []byte) []byte { return append([]byte(nil), b...) }
	cases := map[string][]byte{
		TypeCancel:   own(enc.Cancel(7)),
		TypePing:     own(enc.Ping(9)),
		TypePong:     own(enc.Pong(9)),
		TypeShutdown: own(enc.Shutdown(2000)),
		TypeHello:    own(enc.Hello([]uint64{1}, DefaultMaxFrame)),
	}
	for typ, frame := range cases {
		m, err := DecodeMessage(frame[4:], HostToWorker)
		if err != nil || m.Type != typ {
			t.Errorf("%s: %+v %v", typ, m, err)
		}
	}
}

func TestFrameReader(t *testing.T) {
	enc := NewEncoder()
	var stream bytes.Buffer
	stream.Write(enc.Ping(1))
	stream.Write(enc.Ping(2))
	fr := NewFrameReader(&stream, 0)
	for i := 1; i <= 2; i++ {
		p, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if m, err := DecodeMessage(p, WorkerToHost); err != nil || m.Seq != uint64(i) {
			t.Fatalf("frame %d: %+v %v", i, m, err)
		}
	}
	if _, err := fr.ReadFrame(); err != io.EOF {
		t.Fatalf("clean end: got %v, want io.EOF", err)
	}

	kind := func(data []byte, max int) ErrorKind {
		_, err := NewFrameReader(bytes.NewReader(data), max).ReadFrame()
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Fatalf("%x: got %v, want a ProtocolError", data, err)
		}
		return pe.Kind
	}
	if k := kind([]byte{0, 0}, 0); k != Truncated {
		t.Errorf("half a prefix: %s", k)
	}
	if k := kind([]byte{0, 0, 0, 5, 0x80}, 0); k != Truncated {
		t.Errorf("half a payload: %s", k)
	}
	if k := kind([]byte{0, 0, 0, 0}, 0); k != EmptyFrame {
		t.Errorf("empty: %s", k)
	}
	// The limit is checked before the payload is read or allocated.
	if k := kind([]byte{0xff, 0xff, 0xff, 0xff}, 1024); k != FrameTooLarge {
		t.Errorf("huge: %s", k)
	}
}
