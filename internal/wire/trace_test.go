package wire

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// The trace vectors: the decoder fills Message.Trace from them, and ReqTraced and BReq write the
// canonical ones byte for byte (the Python suite checks the same cases, tests/test_vectors.py
// and tests/test_tracing.py).
func TestVectorsTrace(t *testing.T) {
	byName := map[string]vector{}
	for _, v := range loadVectors(t) {
		byName[v.Name] = v
	}
	decode := func(name string) *Message {
		t.Helper()
		v, ok := byName[name]
		if !ok {
			t.Fatalf("no vector %s", name)
		}
		b, _ := hex.DecodeString(v.Hex)
		payload, err := SplitFrame(b, 0)
		if err != nil {
			t.Fatal(err)
		}
		m, err := DecodeMessage(payload, HostToWorker)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return m
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for name, want := range map[string]Trace{
		"req_traceparent":                        {Parent: tp},
		"req_traceparent_tracestate":             {Parent: tp, State: "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"},
		"req_traceparent_not_sampled":            {Parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"},
		"req_trace_nil_means_absent":             {},
		"req_traceparent_unparsable_still_valid": {Parent: "not-a-traceparent"},
		"req_tracestate_alone_still_valid":       {State: "rojo=00f067aa0ba902b7"},
		"req_full":                               {},
		"breq_traceparent":                       {Parent: tp, State: "vendor=v1"},
		"breq":                                   {},
	} {
		if got := decode(name).Trace; got != want {
			t.Errorf("%s: trace %+v, want %+v", name, got, want)
		}
	}

	enc := NewEncoder()
	for name, build := range map[string]func() ([]byte, error){
		"req_traceparent": func() ([]byte, error) {
			return enc.ReqTraced(16, "predict", nil, 0, false, Trace{Parent: tp})
		},
		"req_traceparent_tracestate": func() ([]byte, error) {
			return enc.ReqTraced(17, "predict", map[string]any{"question": "2+2?"}, 1767225600000, true,
				Trace{Parent: tp, State: "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"})
		},
		"breq_traceparent": func() ([]byte, error) {
			return enc.BReq(8, "double", []msgpack.RawMessage{{0x81, 0xa1, 'x', 1}, {0x81, 0xa1, 'x', 2}}, 0,
				Trace{Parent: tp, State: "vendor=v1"})
		},
		// untraced: the frame a breq was before it could carry a trace context
		"breq_deadline": func() ([]byte, error) {
			return enc.BReq(6, "double", []msgpack.RawMessage{{0x81, 0xa1, 'x', 1}}, 1700000000000, Trace{})
		},
		// no traceparent: tracestate alone is not sent, the frame is Req's
		"req_full": func() ([]byte, error) {
			return enc.ReqTraced(42, "predict", map[string]any{"question": "2+2?"}, 1767225600000, true,
				Trace{State: "rojo=00f067aa0ba902b7"})
		},
	} {
		got, err := build()
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := hex.DecodeString(byName[name].Hex); !bytes.Equal(got, want) {
			t.Errorf("%s: encoded %x\nwant       %x", name, got, want)
		}
	}
}
