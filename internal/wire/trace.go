package wire

// Trace is the W3C trace context a req carries (https://www.w3.org/TR/trace-context/): the
// caller's span as a traceparent header value, and its tracestate. The worker continues the
// trace from it; the wire does not parse either, it only carries them.
type Trace struct {
	Parent string // "traceparent"; empty: the request is not traced
	State  string // "tracestate"; sent only with Parent
}
