package wire

import (
	"fmt"

	"github.com/mlbridge/mlbridge/internal/errs"
)

// ErrorKind names one way a frame or message can be invalid. The kinds are shared with the
// Python runtime and the test vectors in spec/vectors.
type ErrorKind string

// Frame-level kinds: the byte stream can no longer be trusted.
const (
	EmptyFrame    ErrorKind = "empty_frame"
	FrameTooLarge ErrorKind = "frame_too_large"
	Truncated     ErrorKind = "truncated"
	NotAMap       ErrorKind = "not_a_map"
	TrailingBytes ErrorKind = "trailing_bytes"
	Malformed     ErrorKind = "malformed"
)

// Message-level kinds: the frame decoded, but the message breaks the schema.
const (
	UnknownType  ErrorKind = "unknown_type"
	MissingField ErrorKind = "missing_field"
	BadField     ErrorKind = "bad_field"
	// TooDeep is a value nested more than MaxDepth arrays/maps deep. The frame decoded,
	// so the stream is still in sync: only the message's call fails.
	TooDeep ErrorKind = "too_deep"
)

// ProtocolError is a frame or message that breaks spec/protocol.md.
type ProtocolError struct {
	Kind   ErrorKind
	Detail string
}

func (e *ProtocolError) Error() string {
	if e.Detail == "" {
		return "mlbridge protocol: " + string(e.Kind)
	}
	return fmt.Sprintf("mlbridge protocol: %s: %s", e.Kind, e.Detail)
}

// StreamBroken reports whether the error leaves the byte stream out of sync, so the
// connection must be closed.
func (e *ProtocolError) StreamBroken() bool {
	switch e.Kind {
	case UnknownType, MissingField, BadField, TooDeep:
		return false
	}
	return true
}

// Is makes a TooDeep error match errs.ErrSerialization too: a result nested too deep is a
// value that cannot travel, the same failure a worker reports when it refuses to send one.
func (e *ProtocolError) Is(target error) bool {
	return e.Kind == TooDeep && target == errs.ErrSerialization
}

func protoErr(kind ErrorKind, format string, args ...any) *ProtocolError {
	return &ProtocolError{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}
