package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/tinylib/msgp/msgp"

	"github.com/mlbridge/mlbridge/internal/testenv"
)

// vector is one case of spec/vectors/messages.json, shared with the Python tests.
type vector struct {
	Name      string         `json:"name"`
	Direction string         `json:"direction"`
	Hex       string         `json:"hex"`
	Message   map[string]any `json:"message"`
	Error     string         `json:"error"`
	MaxFrame  int            `json:"max_frame"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.Root(), "spec", "vectors", "messages.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var vs []vector
	if err := dec.Decode(&vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 20 {
		t.Fatalf("only %d vectors", len(vs))
	}
	return vs
}

func (v vector) dir(t *testing.T) Direction {
	switch v.Direction {
	case "host_to_worker":
		return HostToWorker
	case "worker_to_host":
		return WorkerToHost
	}
	t.Fatalf("bad direction %q", v.Direction)
	return 0
}

func TestVectors(t *testing.T) {
	kinds := map[string]bool{}
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			b, err := hex.DecodeString(v.Hex)
			if err != nil {
				t.Fatal(err)
			}
			payload, err := SplitFrame(b, v.MaxFrame)
			if err == nil {
				_, err = DecodeMessage(payload, v.dir(t))
			}
			if v.Error != "" {
				kinds[v.Error] = true
				var pe *ProtocolError
				if !errors.As(err, &pe) || string(pe.Kind) != v.Error {
					t.Fatalf("want error %s, got %v", v.Error, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("valid vector rejected: %v", err)
			}
			got, err := vectorValue(payload)
			if err != nil {
				t.Fatal(err)
			}
			if want := normJSON(v.Message); !reflect.DeepEqual(normGo(got), want) {
				t.Fatalf("decoded %#v\nwant    %#v", normGo(got), want)
			}
			// Re-encoding the decoded value must decode to the same message.
			enc := NewEncoder()
			again, err := enc.Value(got)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := DecodeMessage(again, v.dir(t)); err != nil {
				t.Fatalf("re-encoded message rejected: %v", err)
			}
		})
	}
	for _, k := range []ErrorKind{EmptyFrame, FrameTooLarge, Truncated, NotAMap, TrailingBytes, Malformed, UnknownType, MissingField, BadField, TooDeep} {
		if !kinds[string(k)] {
			t.Errorf("no vector for error kind %s", k)
		}
	}
}

// normGo and normJSON map decoded msgpack and the vector's JSON to one comparable form:
// integers and floats as tagged strings (JSON numbers lose 64-bit precision), bytes as
// "$bin:<hex>".
func normGo(v any) any {
	switch x := v.(type) {
	case *msgp.RawExtension:
		return fmt.Sprintf("$ext:%d:%s", x.Type, hex.EncodeToString(x.Data))
	case []byte:
		return "$bin:" + hex.EncodeToString(x)
	case int8, int16, int32, int64, int:
		return fmt.Sprintf("int:%d", x)
	case uint8, uint16, uint32, uint64, uint:
		return fmt.Sprintf("int:%d", x)
	case float32:
		return "float:" + strconv.FormatFloat(float64(x), 'g', -1, 64)
	case float64:
		return "float:" + strconv.FormatFloat(x, 'g', -1, 64)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normGo(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normGo(e)
		}
		return out
	}
	return v
}

func normJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		s := x.String()
		if strings.ContainsAny(s, ".eE") {
			f, _ := strconv.ParseFloat(s, 64)
			return "float:" + strconv.FormatFloat(f, 'g', -1, 64)
		}
		return "int:" + s
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normJSON(e)
		}
		return out
	case map[string]any:
		if h, ok := x["$bin"].(string); ok && len(x) == 1 {
			return "$bin:" + h
		}
		if e, ok := x["$ext"].([]any); ok && len(x) == 1 && len(e) == 2 {
			return fmt.Sprintf("$ext:%s:%s", e[0], e[1])
		}
		if nest, ok := x["$nest"].([]any); ok && len(x) == 1 && len(nest) == 2 {
			// a value inside n single-element arrays
			n, _ := nest[0].(json.Number).Int64()
			v := normJSON(nest[1])
			for range n {
				v = []any{v}
			}
			return v
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normJSON(e)
		}
		return out
	}
	return v
}

// vectorValue decodes a vector's payload for comparison: DecodeValue, which refuses msgpack
// extensions it has no type for, and, for a payload holding one (a shared-memory reference),
// tinylib/msgp's generic reader, which returns it as a *msgp.RawExtension.
func vectorValue(payload []byte) (any, error) {
	v, err := DecodeValue(payload)
	if err == nil || !strings.Contains(err.Error(), "unknown ext") {
		return v, err
	}
	v, rest, err := msgp.ReadIntfBytes(payload)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("%d trailing bytes", len(rest))
	}
	return v, err
}
