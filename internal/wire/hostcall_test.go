package wire

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// The host's host-call frames decode as valid host → worker messages, and hcall as the host reads it.
func TestHostCallFrames(t *testing.T) {
	enc := NewEncoder()
	decode := func(frame []byte, dir Direction) *Message {
		t.Helper()
		payload, err := SplitFrame(frame, 0)
		if err != nil {
			t.Fatal(err)
		}
		m, err := DecodeMessage(payload, dir)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	f, err := enc.HRes(7, map[string]any{"temp_c": 21.5})
	if err != nil {
		t.Fatal(err)
	}
	m := decode(f, HostToWorker)
	if v, _ := DecodeValue(m.Result); m.Type != TypeHRes || m.ID != 7 || !m.OK || !reflect.DeepEqual(v, map[string]any{"temp_c": 21.5}) {
		t.Fatalf("hres %+v %v", m, v)
	}
	m = decode(enc.HResError(8, ErrorInfo{Category: "not_found", Type: "HostError", Message: "no"}), HostToWorker)
	if m.OK || m.Error.Category != "not_found" || m.Error.Type != "HostError" || m.Error.Message != "no" || m.Error.Traceback != "" {
		t.Fatalf("hres error %+v %+v", m, m.Error)
	}
	funcs, _ := msgpack.Marshal(map[string]any{"f": map[string]any{"description": "d", "schema": map[string]any{}}})
	m = decode(enc.HelloFuncs([]uint64{1}, 1024, funcs), HostToWorker)
	if m.Type != TypeHello || m.MaxFrame != 1024 || string(m.HostFuncs) != string(funcs) {
		t.Fatalf("hello %+v", m)
	}
	if a, b := enc.HelloFuncs([]uint64{1}, 1024, nil), NewEncoder().Hello([]uint64{1}, 1024); string(a) != string(b) {
		t.Fatal("a hello without host functions is not the plain hello")
	}
	// a result too large for the worker's max frame is refused, not sent
	enc.SetMaxFrame(64)
	if _, err := enc.HRes(9, strings.Repeat("x", 100)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("large result: %v", err)
	}
	enc.SetMaxFrame(0)
	// hcall from the worker
	raw, _ := msgpack.Marshal(map[string]any{"t": "hcall", "id": 3, "fn": "weather", "args": map[string]any{"city": "Paris"}, "parent": 42})
	m, err = DecodeMessage(raw, WorkerToHost)
	if err != nil || m.ID != 3 || m.Fn != "weather" || m.Parent != 42 || len(m.Args) == 0 {
		t.Fatalf("hcall %+v %v", m, err)
	}
}
