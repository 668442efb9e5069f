package wire

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// A map key Go cannot hash (a Python tuple arrives as an array) is an error naming it, not
// a panic; and the decoder msgpack's pool hands out next has the default map decoder again.
func TestDecodeValueUnhashableKey(t *testing.T) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	_ = enc.EncodeMapLen(1)
	_ = enc.Encode([]int{1, 2})
	_ = enc.EncodeString("pair")
	if _, err := DecodeValue(buf.Bytes()); err == nil || !strings.Contains(err.Error(), "cannot be a Go map key") {
		t.Fatalf("got %v", err)
	}
	b, _ := msgpack.Marshal(map[int]string{1: "a"})
	for range 4 { // a pooled decoder, with or without the map decoder left on it
		var v any
		dec := msgpack.GetDecoder()
		dec.Reset(bytes.NewReader(b))
		err := dec.Decode(&v)
		msgpack.PutDecoder(dec)
		if err == nil {
			t.Fatalf("a pooled decoder kept DecodeMapValue: %#v", v)
		}
	}
}
