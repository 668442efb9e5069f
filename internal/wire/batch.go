package wire

import (
	"github.com/tinylib/msgp/msgp"
	"github.com/vmihailenco/msgpack/v5"
)

// Dynamic batching (spec/protocol.md, "Batches"): the host sends the calls it gathered for a
// batched op as one breq, the worker answers them with one bres, item by item in order.
const (
	TypeBReq = "breq"
	TypeBRes = "bres"
)

// ItemResult is one item's answer in a bres: its result when OK, else its error.
type ItemResult struct {
	OK     bool
	Result msgpack.RawMessage
	Error  *ErrorInfo
}

// BatchSpec is what a worker's hello declares for one batched op (its "batched" field).
type BatchSpec struct {
	MaxSize   int `msgpack:"max_size"`
	MaxWaitMs int `msgpack:"max_wait_ms"`
}

// Args encodes one call's arguments alone, with the checks Req applies (a map or nil, the
// depth limit, the max frame): a batch item is encoded by its caller, once, before it joins a
// batch, so a bad argument fails that caller only. The bytes are a copy (the encoder is reused).
func (e *Encoder) Args(args any) (msgpack.RawMessage, error) {
	max := e.maxFrame
	if max <= 0 {
		max = DefaultMaxFrame
	}
	e.buf.reset(max)
	if args == nil {
		return msgpack.RawMessage{0x80}, nil // an empty map: every item of a breq is a map
	}
	if err := e.encodeArgs(args); err != nil {
		return nil, err
	}
	if len(e.buf.b) == 1 && e.buf.b[0] == 0xc0 { // nil encoded: {} on the wire
		return msgpack.RawMessage{0x80}, nil
	}
	return append(msgpack.RawMessage(nil), e.buf.b...), nil
}

// BatchOverhead bounds the bytes of a breq besides its items (envelope, op name, headers,
// trace context): the host fills a batch while its items and this stay within the max frame.
func BatchOverhead(op string) int { return 64 + len(op) + maxTraceBytes }

// maxTraceBytes bounds a trace context on the wire: "traceparent" and its 55 characters,
// "tracestate" and the most W3C allows (512), with their msgpack headers.
const maxTraceBytes = 12 + 57 + 11 + 515

// BReq encodes a batch request: items are maps already encoded by Args. deadline is unix
// milliseconds (0: none). tr is the batch's handler span (tr.Parent empty: none, and then the
// frame is what a breq was before it could carry one). A batch larger than the max frame
// fails with ErrFrameTooLarge.
func (e *Encoder) BReq(id uint64, op string, items []msgpack.RawMessage, deadline uint64, tr Trace) ([]byte, error) {
	fields := 4
	if deadline != 0 {
		fields++
	}
	fields += tr.fields()
	max := e.maxFrame
	if max <= 0 {
		max = DefaultMaxFrame
	}
	e.begin(fields, TypeBReq, headerLen+max)
	e.uintField("id", id)
	_ = e.enc.EncodeString("op")
	_ = e.enc.EncodeString(op)
	_ = e.enc.EncodeString("items")
	_ = e.enc.EncodeArrayLen(len(items))
	for _, it := range items {
		if _, err := e.buf.Write(it); err != nil {
			return nil, err
		}
	}
	if deadline != 0 {
		e.uintField("deadline", deadline)
	}
	e.traceFields(tr)
	if e.buf.err != nil {
		return nil, e.buf.err
	}
	return e.finish(), nil
}

// items reads a breq's items: an array of maps, each kept as raw msgpack.
func (d *decoder) items() ([]msgpack.RawMessage, bool) {
	n, ok := d.arrayLen()
	if !ok {
		return nil, false
	}
	out := make([]msgpack.RawMessage, 0, min(n, 256))
	for range n {
		v, vok := d.raw(msgp.MapType)
		ok = ok && vok
		out = append(out, v)
	}
	return out, ok
}

// results reads a bres's results: an array of {ok, result?, error} maps. A result without
// "ok", or not ok without "error", is a missing field (reported like a res's).
func (d *decoder) results() ([]ItemResult, bool) {
	n, ok := d.arrayLen()
	if !ok {
		return nil, false
	}
	out := make([]ItemResult, 0, min(n, 256))
	for range n {
		var r ItemResult
		var hasOK, hasErr bool
		rok := d.fields(func(key string) (ok bool) {
			switch key {
			case "ok":
				hasOK = true
				r.OK, ok = d.bool()
			case "result":
				r.Result, ok = d.raw(msgp.InvalidType)
			case "error":
				if d.isNil() {
					d.skip()
					return true
				}
				hasErr = true
				r.Error, ok = d.errorInfo()
			default:
				d.skip()
				ok = true
			}
			return ok
		})
		ok = ok && rok
		switch {
		case !rok: // a wrong type: the field's bad_field, reported by decodeField
		case !hasOK:
			d.bad(MissingField, "bres result without %q", "ok")
		case !r.OK && !hasErr:
			d.bad(MissingField, "bres result without %q", "error")
		case hasErr && r.Error.missing != "":
			d.bad(MissingField, "bres result error without %q", r.Error.missing)
		}
		out = append(out, r)
	}
	return out, ok
}
