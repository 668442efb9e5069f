package wire

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// ProtocolVersion is the newest protocol version this host speaks.
const ProtocolVersion = 1

// Direction says which side sent a message; hello has a different shape each way.
type Direction int

const (
	HostToWorker Direction = iota
	WorkerToHost
)

func (d Direction) String() string {
	if d == HostToWorker {
		return "host"
	}
	return "worker"
}

// Message types (the "t" field).
const (
	TypeHello    = "hello"
	TypeReq      = "req"
	TypeRes      = "res"
	TypeChunk    = "chunk"
	TypeEnd      = "end"
	TypeCancel   = "cancel"
	TypePing     = "ping"
	TypePong     = "pong"
	TypeShutdown = "shutdown"
)

// ErrorInfo is the error shape shared by res and hello.
type ErrorInfo struct {
	Category  string `msgpack:"category"`
	Type      string `msgpack:"type"`
	Message   string `msgpack:"message"`
	Traceback string `msgpack:"traceback,omitempty"`

	missing string // first required field absent when decoded
}

// Framework names the framework a worker's bridge wraps.
type Framework struct {
	Name    string `msgpack:"name"`
	Version string `msgpack:"version"`

	missing string
}

// Message is one decoded envelope. Only the fields of its Type are meaningful. Values the
// host does not interpret (args, result, data, runtime) stay as raw msgpack so that the
// caller decodes them once, into its own types.
type Message struct {
	Type string

	ID       uint64
	Op       string
	Args     msgpack.RawMessage
	Deadline uint64 // unix milliseconds; 0 means none
	Stream   bool

	OK     bool
	Result msgpack.RawMessage
	Error  *ErrorInfo
	Data   msgpack.RawMessage

	Seq   uint64
	Grace uint64
	// HasGrace distinguishes "grace: 0" from an absent grace.
	HasGrace bool

	Versions     []uint64
	Version      uint64
	Pid          uint64
	Framework    Framework
	Capabilities []string
	Handlers     map[string]string
	MaxFrame     uint64
	Runtime      msgpack.RawMessage
}

// field bits record which keys a message carried.
type fieldSet uint32

const (
	fT fieldSet = 1 << iota
	fID
	fOp
	fArgs
	fOK
	fResult
	fError
	fData
	fSeq
	fVersions
	fVersion
	fPid
	fFramework
	fCapabilities
	fHandlers
)

// DecodeMessage decodes and validates one payload sent in direction dir. Frame-level
// problems (not a map, malformed msgpack, trailing bytes) take precedence over schema
// problems. On a schema error the partly decoded message is returned with the error, so a
// caller can still see its Type and ID.
func DecodeMessage(payload []byte, dir Direction) (*Message, error) {
	r := bytes.NewReader(payload)
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(r)

	c, err := dec.PeekCode()
	if err != nil {
		return nil, protoErr(Malformed, "empty payload")
	}
	if !isMapCode(c) {
		if c == msgpcode.Nil || knownCode(c) {
			return nil, protoErr(NotAMap, "payload starts with 0x%02x, not a map", c)
		}
		return nil, protoErr(Malformed, "invalid msgpack code 0x%02x", c)
	}
	n, err := dec.DecodeMapLen()
	if err != nil {
		return nil, protoErr(Malformed, "%v", err)
	}

	m := &Message{}
	var seen fieldSet
	var schemaErr *ProtocolError
	bad := func(kind ErrorKind, format string, args ...any) {
		if schemaErr == nil {
			schemaErr = protoErr(kind, format, args...)
		}
	}
	for i := 0; i < n; i++ {
		kc, err := dec.PeekCode()
		if err != nil {
			return nil, protoErr(Malformed, "%v", err)
		}
		if !msgpcode.IsString(kc) {
			if err := dec.Skip(); err != nil {
				return nil, protoErr(Malformed, "%v", err)
			}
			bad(BadField, "map key is not a string")
			if err := dec.Skip(); err != nil {
				return nil, protoErr(Malformed, "%v", err)
			}
			continue
		}
		key, err := dec.DecodeString()
		if err != nil {
			return nil, protoErr(Malformed, "%v", err)
		}
		if !utf8.ValidString(key) {
			bad(BadField, "map key is not valid UTF-8")
		}
		if err := m.decodeField(dec, key, &seen, bad); err != nil {
			return nil, err
		}
	}
	if r.Len() != 0 {
		return nil, protoErr(TrailingBytes, "%d bytes after the message", r.Len())
	}
	if schemaErr != nil {
		return m, schemaErr
	}
	if err := m.validate(seen, dir); err != nil {
		return m, err
	}
	return m, nil
}

// decodeField reads the value of key. A wrong type is reported through bad and the value
// skipped, so that frame-level damage later in the payload is still found first.
func (m *Message) decodeField(dec *msgpack.Decoder, key string, seen *fieldSet, bad func(ErrorKind, string, ...any)) error {
	if optionalFields[key] {
		// nil in an optional field means absent (msgpack encoders write None/nil freely).
		if c, err := dec.PeekCode(); err == nil && c == msgpcode.Nil {
			return dec.DecodeNil()
		}
	}
	var err error
	var ok bool
	switch key {
	case "t":
		*seen |= fT
		m.Type, ok, err = readString(dec)
	case "id":
		*seen |= fID
		m.ID, ok, err = readUint(dec)
	case "op":
		*seen |= fOp
		m.Op, ok, err = readString(dec)
	case "args":
		*seen |= fArgs
		m.Args, ok, err = readRawOf(dec, isMapOrNil)
	case "deadline":
		m.Deadline, ok, err = readUint(dec)
	case "stream":
		m.Stream, ok, err = readBool(dec)
	case "ok":
		*seen |= fOK
		m.OK, ok, err = readBool(dec)
	case "result":
		*seen |= fResult
		m.Result, ok, err = readRawOf(dec, nil)
	case "error":
		*seen |= fError
		m.Error, ok, err = readErrorInfo(dec)
	case "data":
		*seen |= fData
		m.Data, ok, err = readRawOf(dec, nil)
	case "seq":
		*seen |= fSeq
		m.Seq, ok, err = readUint(dec)
	case "grace":
		m.HasGrace = true
		m.Grace, ok, err = readUint(dec)
	case "versions":
		*seen |= fVersions
		m.Versions, ok, err = readUintSlice(dec)
	case "version":
		*seen |= fVersion
		m.Version, ok, err = readUint(dec)
	case "pid":
		*seen |= fPid
		m.Pid, ok, err = readUint(dec)
	case "framework":
		*seen |= fFramework
		m.Framework, ok, err = readFramework(dec)
	case "capabilities":
		*seen |= fCapabilities
		m.Capabilities, ok, err = readStringSlice(dec)
	case "handlers":
		*seen |= fHandlers
		m.Handlers, ok, err = readStringMap(dec)
	case "max_frame":
		m.MaxFrame, ok, err = readUint(dec)
	case "runtime":
		m.Runtime, ok, err = readRawOf(dec, isMapOrNil)
	default:
		// Unknown keys are ignored for forward compatibility.
		if err := dec.Skip(); err != nil {
			return protoErr(Malformed, "%v", err)
		}
		return nil
	}
	if err != nil {
		return protoErr(Malformed, "field %q: %v", key, err)
	}
	if !ok {
		bad(BadField, "field %q has the wrong type", key)
	}
	return nil
}

// optionalFields may be nil, meaning absent.
var optionalFields = map[string]bool{
	"args": true, "deadline": true, "stream": true, "grace": true, "max_frame": true, "runtime": true,
}

// typesFrom lists the message types each side may send.
var typesFrom = map[Direction]map[string]bool{
	HostToWorker: {TypeHello: true, TypeReq: true, TypeCancel: true, TypePing: true, TypePong: true, TypeShutdown: true},
	WorkerToHost: {TypeHello: true, TypeRes: true, TypeChunk: true, TypeEnd: true, TypePing: true, TypePong: true},
}

// required lists, per message type, the fields that must be present.
var required = map[string]fieldSet{
	TypeReq:      fID | fOp,
	TypeRes:      fID | fOK,
	TypeChunk:    fID | fData,
	TypeEnd:      fID,
	TypeCancel:   fID,
	TypePing:     fSeq,
	TypePong:     fSeq,
	TypeShutdown: 0,
}

var fieldNames = []struct {
	bit  fieldSet
	name string
}{
	{fID, "id"}, {fOp, "op"}, {fOK, "ok"}, {fData, "data"}, {fSeq, "seq"}, {fError, "error"},
	{fVersions, "versions"}, {fVersion, "version"}, {fPid, "pid"}, {fFramework, "framework"},
	{fCapabilities, "capabilities"}, {fHandlers, "handlers"},
}

func (m *Message) validate(seen fieldSet, dir Direction) error {
	if seen&fT == 0 {
		return protoErr(MissingField, `no "t" field`)
	}
	if !typesFrom[dir][m.Type] {
		return protoErr(UnknownType, "message type %q from the %s", m.Type, dir)
	}
	var need fieldSet
	switch m.Type {
	case TypeHello:
		switch {
		case dir == HostToWorker:
			need = fVersions
		case seen&fError != 0:
			need = 0
		default:
			need = fVersion | fPid | fFramework | fCapabilities | fHandlers
		}
	case TypeRes:
		need = required[TypeRes]
		if seen&fOK != 0 && !m.OK {
			need |= fError
		}
	default:
		var known bool
		need, known = required[m.Type]
		if !known {
			return protoErr(UnknownType, "message type %q", m.Type)
		}
	}
	if missing := need &^ seen; missing != 0 {
		for _, f := range fieldNames {
			if missing&f.bit != 0 {
				return protoErr(MissingField, "%s message without %q", m.Type, f.name)
			}
		}
	}
	if seen&fError != 0 && m.Error != nil && m.Error.missing != "" {
		return protoErr(MissingField, "error without %q", m.Error.missing)
	}
	if seen&fFramework != 0 && m.Framework.missing != "" {
		return protoErr(MissingField, "framework without %q", m.Framework.missing)
	}
	return nil
}

func isMapCode(c byte) bool {
	return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32
}

func isMapOrNil(c byte) bool { return c == msgpcode.Nil || isMapCode(c) }

// knownCode reports whether c starts some valid msgpack value (0xc1 is the only byte that
// never does).
func knownCode(c byte) bool { return c != 0xc1 }

func isIntCode(c byte) bool {
	return msgpcode.IsFixedNum(c) ||
		(c >= msgpcode.Uint8 && c <= msgpcode.Uint64) ||
		(c >= msgpcode.Int8 && c <= msgpcode.Int64)
}

func readString(dec *msgpack.Decoder) (string, bool, error) {
	c, err := dec.PeekCode()
	if err != nil {
		return "", false, err
	}
	if !msgpcode.IsString(c) {
		return "", false, dec.Skip()
	}
	s, err := dec.DecodeString()
	if err != nil {
		return "", false, err
	}
	// Envelope strings must be valid UTF-8, as msgpack's str type promises and Python
	// requires; a bad one fails the message, not the stream.
	return s, utf8.ValidString(s), nil
}

func readUint(dec *msgpack.Decoder) (uint64, bool, error) {
	c, err := dec.PeekCode()
	if err != nil {
		return 0, false, err
	}
	if !isIntCode(c) {
		return 0, false, dec.Skip()
	}
	if c == msgpcode.Uint64 {
		v, err := dec.DecodeUint64()
		return v, true, err
	}
	v, err := dec.DecodeInt64()
	if err != nil {
		return 0, false, err
	}
	if v < 0 {
		return 0, false, nil
	}
	return uint64(v), true, nil
}

func readBool(dec *msgpack.Decoder) (bool, bool, error) {
	c, err := dec.PeekCode()
	if err != nil {
		return false, false, err
	}
	if c != msgpcode.True && c != msgpcode.False {
		return false, false, dec.Skip()
	}
	v, err := dec.DecodeBool()
	return v, true, err
}

// readRawOf returns the raw encoding of the next value; accept, if set, restricts its type.
func readRawOf(dec *msgpack.Decoder, accept func(byte) bool) (msgpack.RawMessage, bool, error) {
	c, err := dec.PeekCode()
	if err != nil {
		return nil, false, err
	}
	raw, err := dec.DecodeRaw()
	if err != nil {
		return nil, false, err
	}
	if accept != nil && !accept(c) {
		return nil, false, nil
	}
	return raw, true, nil
}

func readArrayLen(dec *msgpack.Decoder) (int, bool, error) {
	c, err := dec.PeekCode()
	if err != nil {
		return 0, false, err
	}
	if !msgpcode.IsFixedArray(c) && c != msgpcode.Array16 && c != msgpcode.Array32 {
		return 0, false, dec.Skip()
	}
	n, err := dec.DecodeArrayLen()
	return n, true, err
}

func readMapLen(dec *msgpack.Decoder) (int, bool, error) {
	c, err := dec.PeekCode()
	if err != nil {
		return 0, false, err
	}
	if !isMapCode(c) {
		return 0, false, dec.Skip()
	}
	n, err := dec.DecodeMapLen()
	return n, true, err
}

func readUintSlice(dec *msgpack.Decoder) ([]uint64, bool, error) {
	n, ok, err := readArrayLen(dec)
	if !ok || err != nil {
		return nil, ok, err
	}
	out := make([]uint64, 0, min(n, 16))
	allOK := true
	for range n {
		v, ok, err := readUint(dec)
		if err != nil {
			return nil, false, err
		}
		allOK = allOK && ok
		out = append(out, v)
	}
	return out, allOK, nil
}

func readStringSlice(dec *msgpack.Decoder) ([]string, bool, error) {
	n, ok, err := readArrayLen(dec)
	if !ok || err != nil {
		return nil, ok, err
	}
	out := make([]string, 0, min(n, 64))
	allOK := true
	for range n {
		v, ok, err := readString(dec)
		if err != nil {
			return nil, false, err
		}
		allOK = allOK && ok
		out = append(out, v)
	}
	return out, allOK, nil
}

func readStringMap(dec *msgpack.Decoder) (map[string]string, bool, error) {
	n, ok, err := readMapLen(dec)
	if !ok || err != nil {
		return nil, ok, err
	}
	out := make(map[string]string, min(n, 256))
	allOK := true
	for range n {
		k, ok1, err := readString(dec)
		if err != nil {
			return nil, false, err
		}
		v, ok2, err := readString(dec)
		if err != nil {
			return nil, false, err
		}
		allOK = allOK && ok1 && ok2
		out[k] = v
	}
	return out, allOK, nil
}

// readStruct walks a map of string keys, handing each value to field; unknown keys are
// skipped by field itself returning (false, nil) after skipping.
func readStruct(dec *msgpack.Decoder, field func(key string) (bool, error)) (bool, error) {
	n, ok, err := readMapLen(dec)
	if !ok || err != nil {
		return ok, err
	}
	allOK := true
	for range n {
		k, okKey, err := readString(dec)
		if err != nil {
			return false, err
		}
		if !okKey {
			allOK = false
			if err := dec.Skip(); err != nil {
				return false, err
			}
			continue
		}
		ok, err := field(k)
		if err != nil {
			return false, err
		}
		allOK = allOK && ok
	}
	return allOK, nil
}

func readFramework(dec *msgpack.Decoder) (Framework, bool, error) {
	var f Framework
	var has [2]bool
	ok, err := readStruct(dec, func(key string) (bool, error) {
		var ok bool
		var err error
		switch key {
		case "name":
			has[0] = true
			f.Name, ok, err = readString(dec)
		case "version":
			has[1] = true
			f.Version, ok, err = readString(dec)
		default:
			return true, dec.Skip()
		}
		return ok, err
	})
	f.missing = firstMissing(has[:], "name", "version")
	return f, ok, err
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

func readErrorInfo(dec *msgpack.Decoder) (*ErrorInfo, bool, error) {
	e := &ErrorInfo{}
	var has [3]bool
	ok, err := readStruct(dec, func(key string) (bool, error) {
		var ok bool
		var err error
		switch key {
		case "category":
			has[0] = true
			e.Category, ok, err = readString(dec)
		case "type":
			has[1] = true
			e.Type, ok, err = readString(dec)
		case "message":
			has[2] = true
			e.Message, ok, err = readString(dec)
		case "traceback":
			if c, perr := dec.PeekCode(); perr == nil && c == msgpcode.Nil {
				return true, dec.DecodeNil()
			}
			e.Traceback, ok, err = readString(dec)
		default:
			return true, dec.Skip()
		}
		return ok, err
	})
	e.missing = firstMissing(has[:], "category", "type", "message")
	return e, ok, err
}

// DecodeValue decodes any msgpack value into plain Go values (maps with string keys,
// []any, []byte for bin). It is for tests, vectors and the CLI, not the hot path.
func DecodeValue(b []byte) (any, error) {
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	r := bytes.NewReader(b)
	dec.Reset(r)
	v, err := dec.DecodeInterface()
	if err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d trailing bytes", r.Len())
	}
	return v, nil
}
