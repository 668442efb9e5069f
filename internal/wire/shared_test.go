package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

// InlineShared rewrites every shared reference, wherever it is nested, into a bin of its bytes
// and leaves everything else byte for byte.
func TestInlineShared(t *testing.T) {
	build := func(data func([]byte) []byte) []byte {
		var raw []byte
		raw = msgp.AppendMapHeader(raw, 2)
		raw = msgp.AppendString(raw, "a")
		raw = msgp.AppendMapHeader(raw, 2)
		raw = msgp.AppendString(raw, "dtype")
		raw = msgp.AppendString(raw, "uint8")
		raw = msgp.AppendString(raw, "data")
		raw = data(raw)
		raw = msgp.AppendString(raw, "list")
		raw = msgp.AppendArrayHeader(raw, 2)
		raw = msgp.AppendInt(raw, -5)
		return append(raw, 0xd4, 9, 'x') // fixext 1, type 9: not ours, left as it is
	}
	raw := build(func(b []byte) []byte { return AppendSharedRef(b, SharedRef{ID: 3, Offset: 8, Length: 4}) })
	want := build(func(b []byte) []byte { return msgp.AppendBytes(b, []byte("abcd")) })

	seg := []byte("01234567abcdXYZ")
	out, err := InlineShared(raw, func(r SharedRef) ([]byte, error) {
		if r.ID != 3 {
			return nil, errors.New("wrong id")
		}
		return seg[r.Offset : r.Offset+r.Length], nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, want) {
		t.Fatalf("inlined\n% x\nwant\n% x", out, want)
	}
	if _, err := InlineShared(raw, func(SharedRef) ([]byte, error) { return nil, errors.New("gone") }); err == nil {
		t.Fatal("a missing segment was inlined")
	}
	if _, err := ParseSharedRef([]byte{1, 2}); !errors.Is(err, ErrMalformedValue) {
		t.Fatalf("short reference: %v", err)
	}
}
