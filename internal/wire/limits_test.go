package wire

import (
	"bytes"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/tinylib/msgp/msgp"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge/internal/errs"
)

// nest wraps leaf in n arrays: nest(0, x) is x, nest(2, x) is [[x]].
func nest(n int, leaf any) any {
	v := leaf
	for range n {
		v = []any{v}
	}
	return v
}

// nestMaps wraps leaf in n single-key maps.
func nestMaps(n int, leaf any) any {
	v := leaf
	for range n {
		v = map[string]any{"k": v}
	}
	return v
}

// deepBytes is an array nested n deep holding nil, built as bytes: far deeper than any
// encoder (or recursive decoder) would handle.
func deepBytes(n int) []byte {
	return append(bytes.Repeat([]byte{0x91}, n), 0xc0)
}

func mustEncode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := NewEncoder().Value(v)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), b...)
}

func TestSkipValueAgreesWithMsgp(t *testing.T) {
	values := []any{
		nil, true, false, 0, 1, -1, -33, 127, 128, 1 << 16, 1 << 40, -1 << 40, uint64(math.MaxUint64),
		float32(1.5), 2.5, "", "x", strings.Repeat("s", 31), strings.Repeat("s", 32), strings.Repeat("s", 300),
		strings.Repeat("s", 70000), []byte{}, []byte{1}, make([]byte, 300), make([]byte, 70000),
		[]any{}, []any{1, "a", nil}, make([]any, 20), make([]any, 70000), map[string]any{},
		map[string]any{"a": 1, "b": []any{map[string]any{"c": []byte{1}}}},
		msgpack.RawMessage{0xd4, 1, 2}, msgpack.RawMessage{0xd8, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		msgpack.RawMessage{0xc7, 3, 9, 1, 2, 3}, msgpack.RawMessage{0xc8, 0, 2, 9, 1, 2},
		msgpack.RawMessage{0xc9, 0, 0, 0, 1, 9, 1}, nest(MaxDepth, 1), nestMaps(MaxDepth, "x"),
	}
	for _, v := range values {
		b := append(mustEncode(t, v), 0xc3, 0x07) // two values after it
		want, err := msgp.Skip(b)
		if err != nil {
			t.Fatalf("msgp.Skip(%T): %v", v, err)
		}
		got, deep, err := skipValue(b, MaxDepth)
		if err != nil || deep || len(got) != len(want) {
			t.Errorf("%T: rest %d bytes deep=%v err=%v, msgp leaves %d", v, len(got), deep, err, len(want))
		}
	}
}

func TestSkipValueDepth(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
		deep bool
	}{
		{"arrays at the limit", mustEncode(t, nest(MaxDepth, 1)), false},
		{"empty array at the limit", mustEncode(t, nest(MaxDepth-1, []any{})), false},
		{"maps at the limit", mustEncode(t, nestMaps(MaxDepth, 1)), false},
		{"arrays one past", mustEncode(t, nest(MaxDepth+1, 1)), true},
		{"empty array one past", mustEncode(t, nest(MaxDepth, []any{})), true},
		{"maps one past", mustEncode(t, nestMaps(MaxDepth+1, 1)), true},
		{"a million levels", deepBytes(1 << 20), true},
		// The deep element comes first; the siblings after it are skipped too.
		{"deep then siblings", mustEncode(t, []any{nest(MaxDepth, 1), "after", map[string]any{"x": 1}}), true},
		{"deep map key", append([]byte{0x81}, append(deepBytes(MaxDepth+1), 0x01)...), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := append(append([]byte(nil), c.b...), 0xa2, 'o', 'k')
			rest, deep, err := skipValue(b, MaxDepth)
			if err != nil || deep != c.deep || string(rest) != "\xa2ok" {
				t.Fatalf("rest %q deep=%v err=%v; want deep=%v and the next value", rest, deep, err, c.deep)
			}
		})
	}
}

func TestSkipValueDamage(t *testing.T) {
	for _, b := range [][]byte{
		{}, {0xc1}, {0x92, 0x01}, {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01}, {0xa5, 'a'}, {0xc6, 0xff, 0xff, 0xff, 0xff},
		{0xcb, 0, 0}, append(deepBytes(1 << 16)[:1<<16], 0x92), // deep and cut short
	} {
		if _, _, err := skipValue(b, MaxDepth); err == nil {
			t.Errorf("% x: no error", b[:min(len(b), 8)])
		}
	}
}

// TestScannerSplitWrites feeds encoded values in every split the encoder could make and
// a byte at a time: the verdict must not depend on how the bytes arrive.
func TestScannerSplitWrites(t *testing.T) {
	for _, v := range []any{
		map[string]any{"a": []any{1, 2.5, "x", []byte{1, 2, 3}, nil, true}, "b": map[string]any{}},
		msgpack.RawMessage{0x81, 0xa1, 'e', 0xc7, 3, 9, 1, 2, 3}, // ext8 header split from its type byte below
		nest(MaxDepth, 1), uint64(math.MaxUint64), strings.Repeat("z", 70000),
	} {
		b := mustEncode(t, v)
		for _, step := range []int{1, 2, 3, 7, len(b)} {
			var s scanner
			s.reset()
			var err error
			for i := 0; i < len(b) && err == nil; i += step {
				err = s.feed(b[i:min(i+step, len(b))])
			}
			if err != nil || !s.complete() {
				t.Fatalf("%T step %d: err=%v complete=%v", v, step, err, s.complete())
			}
		}
	}
	var s scanner
	s.reset()
	if err := s.feed(deepBytes(MaxDepth + 1)); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("%d levels: %v", MaxDepth+1, err)
	}
	s.reset()
	if err := s.feed([]byte{0x90, 0x90}); err == nil {
		t.Fatal("a second value was accepted")
	}
	s.reset()
	if err := s.feed([]byte{0x92, 0x01}); err != nil || s.complete() {
		t.Fatalf("half an array: err=%v complete=%v", err, s.complete())
	}
}

func TestReqRefusesArgsNestedTooDeep(t *testing.T) {
	enc := NewEncoder()
	if _, err := enc.Req(1, "x", map[string]any{"v": nest(MaxDepth-1, 1)}, 0, false); err != nil {
		t.Fatalf("args at the limit (the args map is level 1): %v", err)
	}
	for name, args := range map[string]any{
		"arrays":  map[string]any{"v": nest(MaxDepth, 1)},
		"maps":    nestMaps(MaxDepth+1, 1),
		"raw":     msgpack.RawMessage(append([]byte{0x81, 0xa1, 'v'}, deepBytes(MaxDepth)...)),
		"100,000": map[string]any{"v": nest(100_000, 1)},
	} {
		if _, err := enc.Req(1, "x", args, 0, false); !errors.Is(err, ErrTooDeep) {
			t.Errorf("%s: got %v, want ErrTooDeep", name, err)
		}
	}
	// A cyclic value used to recurse until the goroutine stack overflowed (a fatal error,
	// not a panic): now it stops at the depth limit.
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	if _, err := enc.Req(1, "x", cyclic, 0, false); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("cyclic args: %v", err)
	}
	// The encoder is usable again after a refusal.
	frame, err := enc.Req(2, "x", map[string]any{"a": 1}, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := DecodeMessage(frame[headerLen:], HostToWorker); err != nil || m.ID != 2 {
		t.Fatalf("after a refusal: %+v %v", m, err)
	}
}

func TestReqRawArgsMustBeOneValue(t *testing.T) {
	enc := NewEncoder()
	for _, raw := range []msgpack.RawMessage{{0x81, 0xa1, 'a'}, {0x80, 0x80}, {0xc1}, {0x01}} {
		if _, err := enc.Req(1, "x", raw, 0, false); err == nil {
			t.Errorf("raw args % x accepted", []byte(raw))
		}
	}
}

func TestReqFrameLimitIsExact(t *testing.T) {
	enc := NewEncoder()
	args := map[string]any{"v": strings.Repeat("x", 1000)}
	frame, err := enc.Req(7, "op", args, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	size := len(frame) - headerLen
	enc.SetMaxFrame(size)
	if _, err := enc.Req(7, "op", args, 1, true); err != nil {
		t.Fatalf("a frame of exactly the limit: %v", err)
	}
	enc.SetMaxFrame(size - 1)
	// One byte over: the deadline and stream fields come after args, the limit holds there too.
	if _, err := enc.Req(7, "op", args, 1, true); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("one byte over: %v", err)
	}
	enc.SetMaxFrame(100)
	if _, err := enc.Req(7, "op", args, 1, true); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("args over: %v", err)
	}
}

// TestReqRefusalCostsNoCopy: refusing a 256 MiB argument with a 64 MiB frame limit must
// not copy it (it used to cost a whole encoded frame, then the comparison with the limit).
func TestReqRefusalCostsNoCopy(t *testing.T) {
	big := make([]byte, 256<<20)
	for name, args := range map[string]any{
		"bytes":  map[string]any{"blob": big},
		"string": map[string]any{"text": string(big[:96<<20])},
		"raw":    msgpack.RawMessage(big), // not even a map: refused at its first byte
	} {
		enc := GetEncoder()
		enc.SetMaxFrame(DefaultMaxFrame)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := enc.Req(1, "echo", args, 0, false)
		runtime.ReadMemStats(&after)
		PutEncoder(enc)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
			t.Errorf("%s: refusing allocated %d bytes", name, alloc)
		}
	}
}

// TestReqElementwiseRefusalIsBounded: a value encoded element by element is refused when
// the buffer reaches the limit: the cost is bounded by the limit, not by the value.
func TestReqElementwiseRefusalIsBounded(t *testing.T) {
	floats := make([]float64, 32<<20) // 256 MiB, about 288 MiB encoded
	enc := NewEncoder()
	enc.SetMaxFrame(4 << 20)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := enc.Req(1, "x", map[string]any{"v": floats}, 0, false)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatal(err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("refusing allocated %d bytes for a 4 MiB limit", alloc)
	}
}

func TestDecodeResultTooDeepFailsOnlyThatMessage(t *testing.T) {
	for name, payload := range map[string][]byte{
		"result": mustEncode(t, map[string]any{"t": "res", "id": 9, "ok": true, "result": nest(MaxDepth+1, 1)}),
		// id after a result too deep for any recursive decoder: still read
		"result before id": append(append([]byte{0x84, 0xa1, 't', 0xa3, 'r', 'e', 's', 0xa2, 'o', 'k', 0xc3, 0xa6, 'r', 'e', 's', 'u', 'l', 't'},
			deepBytes(1<<20)...), 0xa2, 'i', 'd', 0x09),
		"chunk data":  mustEncode(t, map[string]any{"t": "chunk", "id": 9, "data": nestMaps(MaxDepth+1, 1)}),
		"unknown key": mustEncode(t, map[string]any{"t": "end", "id": 9, "extra": nest(MaxDepth+1, 1)}),
	} {
		t.Run(name, func(t *testing.T) {
			m, err := DecodeMessage(payload, WorkerToHost)
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Kind != TooDeep || pe.StreamBroken() {
				t.Fatalf("got %v, want a too_deep message error", err)
			}
			if m == nil || m.ID != 9 {
				t.Fatalf("message %+v: the id must be readable", m)
			}
			if !errors.Is(err, errs.ErrSerialization) {
				t.Fatalf("%v does not match ErrSerialization", err)
			}
		})
	}
	m, err := DecodeMessage(mustEncode(t, map[string]any{"t": "res", "id": 9, "ok": true, "result": nest(MaxDepth, 1)}), WorkerToHost)
	if err != nil || m.ID != 9 {
		t.Fatalf("a result at the limit: %v", err)
	}
}

// FuzzScanner: the streaming scanner (used while encoding) and skipValue (used while
// decoding) must agree on every input about where a value ends and whether it is too deep.
func FuzzScanner(f *testing.F) {
	f.Add([]byte{0x81, 0xa1, 'a', 0x92, 0x01, 0xc0})
	f.Add(deepBytes(MaxDepth + 2))
	f.Add([]byte{0xc7, 3, 9, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		rest, deep, err := skipValue(b, MaxDepth)
		var s scanner
		s.reset()
		serr := s.feed(b)
		switch {
		case err != nil: // damaged or cut short: the scanner fails or waits for more
			if serr == nil && s.complete() {
				t.Fatalf("skipValue: %v; scanner: complete", err)
			}
		case deep:
			if !errors.Is(serr, ErrTooDeep) {
				t.Fatalf("skipValue: too deep; scanner: %v", serr)
			}
		case len(rest) == 0:
			if serr != nil || !s.complete() {
				t.Fatalf("one whole value; scanner: %v complete=%v", serr, s.complete())
			}
		default: // bytes after the value
			if serr == nil {
				t.Fatalf("%d bytes after the value; scanner accepted them", len(rest))
			}
		}
	})
}
