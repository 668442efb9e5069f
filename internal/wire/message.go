package wire

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
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
	// Host calls: a worker calls a function the host registered (hcall), the host answers
	// (hres), or the worker gives up waiting (hcancel). Their ids are the worker's own.
	TypeHCall   = "hcall"
	TypeHRes    = "hres"
	TypeHCancel = "hcancel"
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
	Trace    Trace  // W3C trace context of the caller's span; empty when untraced
	Fn       string // hcall: the host function's name
	Parent   uint64 // hcall: the id of the request the call is made for

	OK     bool
	Result msgpack.RawMessage
	Error  *ErrorInfo
	Data   msgpack.RawMessage

	Seq   uint64
	Grace uint64

	Versions     []uint64
	Version      uint64
	Pid          uint64
	Framework    Framework
	Capabilities []string
	Handlers     map[string]string
	MaxFrame     uint64
	Runtime      msgpack.RawMessage
	HostFuncs    msgpack.RawMessage // host hello: {name: {description, schema}} of the host functions
	Batched      msgpack.RawMessage // worker hello: {op: {max_size, max_wait_ms}} (batch.go)

	Items   []msgpack.RawMessage // breq: each item's args map
	Results []ItemResult         // bres: each item's answer, in the breq's order

	// Shm lists the shared-memory segments the message's values refer to (res: the worker's
	// segments, sent on the segment channel before the frame).
	Shm []uint64
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
	fFn
	fParent
	fItems
	fResults
)

// optionalFields may be nil, meaning absent.
var optionalFields = map[string]bool{
	"args": true, "deadline": true, "stream": true, "traceparent": true, "tracestate": true, "grace": true, "max_frame": true, "runtime": true, "host_funcs": true, "batched": true, "shm": true,
}

// typesFrom lists the message types each side may send.
var typesFrom = map[Direction]map[string]bool{
	HostToWorker: {TypeHello: true, TypeReq: true, TypeCancel: true, TypePing: true, TypePong: true, TypeShutdown: true, TypeHRes: true, TypeBReq: true},
	WorkerToHost: {TypeHello: true, TypeRes: true, TypeChunk: true, TypeEnd: true, TypePing: true, TypePong: true, TypeHCall: true, TypeHCancel: true, TypeBRes: true},
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
	TypeHCall:    fID | fFn | fParent,
	TypeHRes:     fID | fOK,
	TypeHCancel:  fID,
	TypeBReq:     fID | fOp | fItems,
	TypeBRes:     fID | fResults,
}

var fieldNames = []struct {
	bit  fieldSet
	name string
}{
	{fID, "id"}, {fOp, "op"}, {fOK, "ok"}, {fData, "data"}, {fSeq, "seq"}, {fError, "error"},
	{fVersions, "versions"}, {fVersion, "version"}, {fPid, "pid"}, {fFramework, "framework"},
	{fCapabilities, "capabilities"}, {fHandlers, "handlers"}, {fFn, "fn"}, {fParent, "parent"},
	{fItems, "items"}, {fResults, "results"},
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
	case TypeRes, TypeHRes:
		need = required[m.Type]
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

// DecodeValue decodes any msgpack value into plain Go values (maps with string keys,
// map[any]any when a key is not a string, []any, []byte for bin). It is for tests, vectors and the CLI, not the hot path.
func DecodeValue(b []byte) (any, error) {
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	defer dec.SetMapDecoder(nil)
	r := bytes.NewReader(b)
	dec.Reset(r)
	dec.SetMapDecoder(DecodeMapValue)
	v, err := dec.DecodeInterface()
	if err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d trailing bytes", r.Len())
	}
	return v, nil
}
