package wire

import (
	"errors"
	"unicode/utf8"

	"github.com/tinylib/msgp/msgp"
	"github.com/vmihailenco/msgpack/v5"
)

// DecodeMessage decodes and validates one payload sent in direction dir. Frame-level
// problems (not a map, malformed msgpack, trailing bytes) take precedence over schema
// problems. On a schema error the partly decoded message is returned with the error, so a
// caller can still see its Type and ID.
//
// It runs once per frame on the hot path, so it scans the bytes in place (tinylib/msgp's
// zero-copy readers): values the host does not interpret (args, result, data, runtime)
// become sub-slices of payload, and only envelope strings are copied.
func DecodeMessage(payload []byte, dir Direction) (*Message, error) {
	switch msgp.NextType(payload) {
	case msgp.MapType:
	case msgp.InvalidType:
		if len(payload) == 0 {
			return nil, protoErr(Malformed, "empty payload")
		}
		return nil, protoErr(Malformed, "invalid msgpack code 0x%02x", payload[0])
	default:
		return nil, protoErr(NotAMap, "payload starts with 0x%02x, not a map", payload[0])
	}
	n, b, err := msgp.ReadMapHeaderBytes(payload)
	if err != nil {
		return nil, malformed(err)
	}
	d := decoder{b: b}
	m := &Message{}
	for range n {
		if msgp.NextType(d.b) != msgp.StrType {
			d.bad(BadField, "map key is not a string")
			d.skip() // the key
			d.skip() // its value
		} else if key, ok := d.str(); ok {
			m.decodeField(&d, key)
		} else {
			d.bad(BadField, "map key is not valid UTF-8")
			d.skip()
		}
		if d.err != nil {
			return nil, d.err
		}
	}
	if len(d.b) != 0 {
		return nil, protoErr(TrailingBytes, "%d bytes after the message", len(d.b))
	}
	if d.schema != nil {
		return m, d.schema
	}
	if err := m.validate(d.seen, dir); err != nil {
		return m, err
	}
	return m, nil
}

// decoder is a cursor over a payload. err is frame-level damage (stop at once); schema is
// the first schema problem (reported after the whole payload proved well formed).
type decoder struct {
	b      []byte
	err    error
	schema *ProtocolError
	seen   fieldSet
}

func malformed(err error) *ProtocolError {
	if errors.Is(err, msgp.ErrShortBytes) || errors.Is(err, errShortValue) {
		return protoErr(Malformed, "payload ends inside a value")
	}
	return protoErr(Malformed, "%v", err)
}

func (d *decoder) bad(kind ErrorKind, format string, args ...any) {
	if d.schema == nil {
		d.schema = protoErr(kind, format, args...)
	}
}

// skip consumes one value of any type, and returns its bytes. A value nested more than
// MaxDepth deep is a message-level error: it is skipped whole, the rest of the message is
// read (its id included), and only the call it belongs to fails.
func (d *decoder) skip() []byte {
	if d.err != nil {
		return nil
	}
	rest, deep, err := skipValue(d.b, MaxDepth)
	if err != nil {
		d.err = malformed(err)
		return nil
	}
	if deep {
		d.bad(TooDeep, "a value nests more than %d arrays/maps deep", MaxDepth)
	}
	v := d.b[:len(d.b)-len(rest)]
	d.b = rest
	return v
}

// expect consumes the next value and returns false if it is not of type t (or is damaged).
func (d *decoder) expect(t msgp.Type) bool {
	if d.err != nil {
		return false
	}
	if msgp.NextType(d.b) != t {
		d.skip()
		return false
	}
	return true
}

// str reads a string; ok is false for another type or invalid UTF-8 (envelope strings must
// be valid, as msgpack's str type promises and Python requires).
func (d *decoder) str() (string, bool) {
	if !d.expect(msgp.StrType) {
		return "", false
	}
	v, rest, err := msgp.ReadStringZC(d.b)
	if err != nil {
		d.err = malformed(err)
		return "", false
	}
	d.b = rest
	return string(v), utf8.Valid(v)
}

// uint reads a non-negative integer, whatever its encoding width or signedness.
func (d *decoder) uint() (uint64, bool) {
	if d.err != nil {
		return 0, false
	}
	switch msgp.NextType(d.b) {
	case msgp.UintType:
		v, rest, err := msgp.ReadUint64Bytes(d.b)
		if err != nil {
			d.err = malformed(err)
			return 0, false
		}
		d.b = rest
		return v, true
	case msgp.IntType:
		v, rest, err := msgp.ReadInt64Bytes(d.b)
		if err != nil {
			d.err = malformed(err)
			return 0, false
		}
		d.b = rest
		return uint64(v), v >= 0
	}
	d.skip()
	return 0, false
}

func (d *decoder) bool() (bool, bool) {
	if !d.expect(msgp.BoolType) {
		return false, false
	}
	v, rest, err := msgp.ReadBoolBytes(d.b)
	if err != nil {
		d.err = malformed(err)
		return false, false
	}
	d.b = rest
	return v, true
}

func (d *decoder) isNil() bool { return d.err == nil && msgp.IsNil(d.b) }

// raw returns the next value's bytes; if t is not InvalidType the value must be of type t.
func (d *decoder) raw(t msgp.Type) (msgpack.RawMessage, bool) {
	if d.err != nil {
		return nil, false
	}
	ok := t == msgp.InvalidType || msgp.NextType(d.b) == t
	v := d.skip()
	return v, ok && d.err == nil
}

// mapLen and arrayLen read a container header of the expected kind.
func (d *decoder) mapLen() (uint32, bool) {
	if !d.expect(msgp.MapType) {
		return 0, false
	}
	n, rest, err := msgp.ReadMapHeaderBytes(d.b)
	if err != nil {
		d.err = malformed(err)
		return 0, false
	}
	// Each entry takes two bytes at least: a count the payload cannot hold is damage, found
	// here rather than after billions of loop turns (a fuzzed map32 header made one take 20 s).
	if uint64(n)*2 > uint64(len(rest)) {
		d.err = protoErr(Malformed, "a map of %d entries in %d bytes", n, len(rest))
		return 0, false
	}
	d.b = rest
	return n, true
}

func (d *decoder) arrayLen() (uint32, bool) {
	if !d.expect(msgp.ArrayType) {
		return 0, false
	}
	n, rest, err := msgp.ReadArrayHeaderBytes(d.b)
	if err != nil {
		d.err = malformed(err)
		return 0, false
	}
	if uint64(n) > uint64(len(rest)) { // each element takes a byte at least
		d.err = protoErr(Malformed, "an array of %d elements in %d bytes", n, len(rest))
		return 0, false
	}
	d.b = rest
	return n, true
}

func (d *decoder) uints() ([]uint64, bool) {
	n, ok := d.arrayLen()
	if !ok {
		return nil, false
	}
	out := make([]uint64, 0, min(n, 16))
	for range n {
		v, vok := d.uint()
		ok = ok && vok
		out = append(out, v)
	}
	return out, ok
}

func (d *decoder) strs() ([]string, bool) {
	n, ok := d.arrayLen()
	if !ok {
		return nil, false
	}
	out := make([]string, 0, min(n, 64))
	for range n {
		v, vok := d.str()
		ok = ok && vok
		out = append(out, v)
	}
	return out, ok
}

func (d *decoder) strMap() (map[string]string, bool) {
	n, ok := d.mapLen()
	if !ok {
		return nil, false
	}
	out := make(map[string]string, min(n, 256))
	for range n {
		k, kok := d.str()
		v, vok := d.str()
		ok = ok && kok && vok
		out[k] = v
	}
	return out, ok
}

// fields walks a map of string keys, handing each key to field, which consumes its value.
func (d *decoder) fields(field func(key string) bool) bool {
	n, ok := d.mapLen()
	if !ok {
		return false
	}
	for range n {
		k, kok := d.str()
		if !kok {
			ok = false
			d.skip()
			continue
		}
		ok = field(k) && ok
	}
	return ok
}

func (d *decoder) framework() (Framework, bool) {
	var f Framework
	var has [2]bool
	ok := d.fields(func(key string) (ok bool) {
		switch key {
		case "name":
			has[0] = true
			f.Name, ok = d.str()
		case "version":
			has[1] = true
			f.Version, ok = d.str()
		default:
			d.skip()
			ok = true
		}
		return ok
	})
	f.missing = firstMissing(has[:], "name", "version")
	return f, ok
}

func (d *decoder) errorInfo() (*ErrorInfo, bool) {
	e := &ErrorInfo{}
	var has [3]bool
	ok := d.fields(func(key string) (ok bool) {
		switch key {
		case "category":
			has[0] = true
			e.Category, ok = d.str()
		case "type":
			has[1] = true
			e.Type, ok = d.str()
		case "message":
			has[2] = true
			e.Message, ok = d.str()
		case "traceback":
			if d.isNil() {
				d.skip()
				return true
			}
			e.Traceback, ok = d.str()
		default:
			d.skip()
			ok = true
		}
		return ok
	})
	e.missing = firstMissing(has[:], "category", "type", "message")
	return e, ok
}

// firstMissing names the first field whose has flag is false.
func firstMissing(has []bool, names ...string) string {
	for i, h := range has {
		if !h {
			return names[i]
		}
	}
	return ""
}

// decodeField reads the value of key into m. A wrong type is recorded as a schema error and
// the value skipped, so that frame-level damage later in the payload is still found first.
func (m *Message) decodeField(d *decoder, key string) {
	if optionalFields[key] && d.isNil() {
		d.skip() // nil in an optional field means absent
		return
	}
	ok := true
	switch key {
	case "t":
		d.seen |= fT
		m.Type, ok = d.str()
	case "id":
		d.seen |= fID
		m.ID, ok = d.uint()
	case "op":
		d.seen |= fOp
		m.Op, ok = d.str()
	case "args":
		d.seen |= fArgs
		m.Args, ok = d.raw(msgp.MapType)
	case "deadline":
		m.Deadline, ok = d.uint()
	case "stream":
		m.Stream, ok = d.bool()
	case "traceparent":
		m.Trace.Parent, ok = d.str()
	case "tracestate":
		m.Trace.State, ok = d.str()
	case "ok":
		d.seen |= fOK
		m.OK, ok = d.bool()
	case "result":
		d.seen |= fResult
		m.Result, ok = d.raw(msgp.InvalidType)
	case "error":
		d.seen |= fError
		m.Error, ok = d.errorInfo()
	case "data":
		d.seen |= fData
		m.Data, ok = d.raw(msgp.InvalidType)
	case "seq":
		d.seen |= fSeq
		m.Seq, ok = d.uint()
	case "grace":
		m.Grace, ok = d.uint()
	case "versions":
		d.seen |= fVersions
		m.Versions, ok = d.uints()
	case "version":
		d.seen |= fVersion
		m.Version, ok = d.uint()
	case "pid":
		d.seen |= fPid
		m.Pid, ok = d.uint()
	case "framework":
		d.seen |= fFramework
		m.Framework, ok = d.framework()
	case "capabilities":
		d.seen |= fCapabilities
		m.Capabilities, ok = d.strs()
	case "handlers":
		d.seen |= fHandlers
		m.Handlers, ok = d.strMap()
	case "fn":
		d.seen |= fFn
		m.Fn, ok = d.str()
	case "parent":
		d.seen |= fParent
		m.Parent, ok = d.uint()
	case "max_frame":
		m.MaxFrame, ok = d.uint()
	case "runtime":
		m.Runtime, ok = d.raw(msgp.MapType)
	case "shm":
		m.Shm, ok = d.uints()
	case "host_funcs":
		m.HostFuncs, ok = d.raw(msgp.MapType)
	case "batched":
		m.Batched, ok = d.raw(msgp.MapType)
	case "items":
		d.seen |= fItems
		m.Items, ok = d.items()
	case "results":
		d.seen |= fResults
		m.Results, ok = d.results()
	default:
		d.skip() // unknown keys are ignored, for forward compatibility
	}
	if !ok && d.err == nil {
		d.bad(BadField, "field %q has the wrong type", key)
	}
}
