package wire

// Trace is the W3C trace context a req or a breq carries (https://www.w3.org/TR/trace-context/): the
// caller's span as a traceparent header value, and its tracestate. The worker continues the
// trace from it; the wire does not parse either, it only carries them.
type Trace struct {
	Parent string // "traceparent"; empty: the request is not traced
	State  string // "tracestate"; sent only with Parent
}

// fields is how many map entries tr adds to a request.
func (tr Trace) fields() int {
	switch {
	case tr.Parent == "":
		return 0
	case tr.State == "":
		return 1
	}
	return 2
}

// traceFields writes tr's entries (none when tr.Parent is empty).
func (e *Encoder) traceFields(tr Trace) {
	if tr.Parent == "" {
		return
	}
	_ = e.enc.EncodeString("traceparent")
	_ = e.enc.EncodeString(tr.Parent)
	if tr.State != "" {
		_ = e.enc.EncodeString("tracestate")
		_ = e.enc.EncodeString(tr.State)
	}
}
