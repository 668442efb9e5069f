// Package errs holds the error values every mlbridge layer returns. The root package
// re-exports them; they live here so internal layers can return them without an import cycle.
package errs

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Sentinels for conditions on the Go side.
var (
	ErrClosed               = errors.New("mlbridge: closed")
	ErrOverloaded           = errors.New("mlbridge: overloaded")
	ErrWorkerExited         = errors.New("mlbridge: worker exited")
	ErrTimeout              = errors.New("mlbridge: timeout")
	ErrCancelled            = errors.New("mlbridge: cancelled")
	ErrHandshake            = errors.New("mlbridge: handshake failed")
	ErrProtocol             = errors.New("mlbridge: protocol error")
	ErrPythonNotFound       = errors.New("mlbridge: python interpreter not found")
	ErrWorkerPackageMissing = errors.New("mlbridge: the interpreter lacks a Python package the worker runtime needs")
	ErrStreamOverflow       = errors.New("mlbridge: stream consumer too slow, buffered chunks over the limit")
)

// Sentinels for the error categories of spec/protocol.md; a RemoteError matches the one of
// its category with errors.Is.
var (
	ErrInvalidArgument      = errors.New("mlbridge: invalid argument")
	ErrUnknownOp            = errors.New("mlbridge: unknown op")
	ErrNotFound             = errors.New("mlbridge: not found")
	ErrSerialization        = errors.New("mlbridge: serialization")
	ErrInvalidConfiguration = errors.New("mlbridge: invalid configuration")
	ErrModel                = errors.New("mlbridge: model error")
	ErrRateLimit            = errors.New("mlbridge: rate limited")
	ErrUnavailable          = errors.New("mlbridge: unavailable")
	ErrInternal             = errors.New("mlbridge: internal error in handler")
	ErrUnknown              = errors.New("mlbridge: unclassified framework error")
)

// ErrCallbackDepth: host calls nested deeper than the limit (Go → Python → Go → ...). It
// also matches ErrInvalidArgument.
var ErrCallbackDepth = fmt.Errorf("%w: host calls nested too deep", ErrInvalidArgument)

// CategoryOf is the protocol error category of a Go error: the category of the mlbridge
// sentinel it matches (a context error counts as timeout or cancelled), else internal.
func CategoryOf(err error) string {
	var re *RemoteError
	if errors.As(err, &re) && re.Category != "" {
		return re.Category
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	for _, cat := range categoryOrder {
		if errors.Is(err, categorySentinel[cat]) {
			return cat
		}
	}
	return "internal"
}

// categoryOrder is the order CategoryOf tries the sentinels: an error may wrap several.
var categoryOrder = []string{
	"timeout", "cancelled", "invalid_argument", "unknown_op", "not_found", "serialization", "protocol",
	"invalid_configuration", "model_error", "rate_limit", "unavailable", "unknown", "internal",
}

var categorySentinel = map[string]error{
	"invalid_argument":      ErrInvalidArgument,
	"unknown_op":            ErrUnknownOp,
	"not_found":             ErrNotFound,
	"timeout":               ErrTimeout,
	"cancelled":             ErrCancelled,
	"serialization":         ErrSerialization,
	"protocol":              ErrProtocol,
	"invalid_configuration": ErrInvalidConfiguration,
	"model_error":           ErrModel,
	"rate_limit":            ErrRateLimit,
	"unavailable":           ErrUnavailable,
	"internal":              ErrInternal,
	"unknown":               ErrUnknown,
}

// RemoteError is an error raised in Python and carried back in a res frame.
type RemoteError struct {
	Op        string
	Category  string
	Type      string // the Python exception class
	Message   string
	Traceback string
}

func (e *RemoteError) Error() string {
	msg := e.Message
	if msg == "" {
		// Workers fill an empty exception text with its type name; a peer that did not
		// (an older worker) still gets a readable error, not a dangling colon.
		msg = "(no message)"
	}
	return fmt.Sprintf("mlbridge: %s: %s: %s: %s", e.Op, e.Category, e.Type, msg)
}

// Is makes errors.Is(err, ErrInvalidArgument) and friends true for the matching category.
// A timeout or cancellation enforced in Python also matches the context error it stands
// for, exactly as when the Go side noticed first.
func (e *RemoteError) Is(target error) bool {
	switch {
	case e.Category == "timeout" && target == context.DeadlineExceeded:
		return true
	case e.Category == "cancelled" && target == context.Canceled:
		return true
	}
	if target == ErrCallbackDepth && e.Type == "CallbackDepthExceeded" {
		return true // the depth limit, met further down a chain of host calls
	}
	s, ok := categorySentinel[e.Category]
	return ok && s == target
}

// ExitError says a worker process is gone: why, how it ended, and what it last wrote on
// stderr. It matches ErrWorkerExited.
type ExitError struct {
	Pid      int
	ExitCode int    // -1 when killed by a signal
	Signal   string // "killed", "terminated"... when killed by a signal
	Reason   string // what the host saw: "stdout closed", "heartbeat timeout", "protocol error"...
	Stderr   []string
}

func (e *ExitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mlbridge: worker pid %d exited", e.Pid)
	if e.Signal != "" {
		fmt.Fprintf(&b, " (signal: %s)", e.Signal)
	} else {
		fmt.Fprintf(&b, " (exit code %d)", e.ExitCode)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, ": %s", e.Reason)
	}
	if len(e.Stderr) > 0 {
		fmt.Fprintf(&b, "; last stderr: %s", strings.Join(e.Stderr, " | "))
	}
	return b.String()
}

// Is matches ErrWorkerExited.
func (e *ExitError) Is(target error) bool { return target == ErrWorkerExited }

// InstallCommand is the command that installs Python packages into the interpreter python,
// for messages that tell the user exactly what to run. The worker runtime itself ships with
// the Go module; an interpreter needs only msgpack for it.
func InstallCommand(python string, packages ...string) string {
	p := strings.Join(packages, " ")
	return fmt.Sprintf("`%s -m pip install %s` (or `uv pip install --python %s %s`)", python, p, python, p)
}
