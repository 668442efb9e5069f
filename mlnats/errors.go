package mlnats

import (
	"context"
	"errors"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/store"
)

// ErrNodeLost: the node that took a call stopped answering (it died, or lost its connection)
// before the call finished. It also matches mlbridge.ErrUnavailable. An Idempotent call is
// retried on another node; any other call fails with it, since it may have run.
var ErrNodeLost = errors.New("mlnats: node lost during the call")

// sentinels are the errors that keep their identity across the wire, by name. A node
// encodes every one its error matches (errors.Is); the client's error matches them all.
var sentinels = []struct {
	name string
	err  error
}{
	{"closed", mlbridge.ErrClosed},
	{"overloaded", mlbridge.ErrOverloaded},
	{"worker_exited", mlbridge.ErrWorkerExited},
	{"timeout", mlbridge.ErrTimeout},
	{"cancelled", mlbridge.ErrCancelled},
	{"handshake", mlbridge.ErrHandshake},
	{"protocol", mlbridge.ErrProtocol},
	{"python_not_found", mlbridge.ErrPythonNotFound},
	{"worker_package_missing", mlbridge.ErrWorkerPackageMissing},
	{"stream_overflow", mlbridge.ErrStreamOverflow},
	{"invalid_argument", mlbridge.ErrInvalidArgument},
	{"unknown_op", mlbridge.ErrUnknownOp},
	{"not_found", mlbridge.ErrNotFound},
	{"serialization", mlbridge.ErrSerialization},
	{"invalid_configuration", mlbridge.ErrInvalidConfiguration},
	{"model_error", mlbridge.ErrModel},
	{"rate_limit", mlbridge.ErrRateLimit},
	{"unknown", mlbridge.ErrUnknown},
	{"unavailable", mlbridge.ErrUnavailable},
	{"internal", mlbridge.ErrInternal},
	{"crash_loop", mlbridge.ErrCrashLoop},
	{"store_not_found", store.ErrNotFound},
	{"store_exists", store.ErrExists},
	{"store_corrupt", store.ErrCorrupt},
	{"store_conflict", store.ErrConflict},
	{"ctx_deadline", context.DeadlineExceeded},
	{"ctx_canceled", context.Canceled},
	{"node_lost", ErrNodeLost},
	{"payload_too_large", ErrPayloadTooLarge},
	{"blob_lost", ErrBlobLost},
}

// wireError is an error as it crosses the wire: its text, the typed errors inside it, and
// the names of the sentinels it matches.
type wireError struct {
	Message   string                `msgpack:"m"`
	Remote    *mlbridge.RemoteError `msgpack:"r,omitempty"`
	Exit      *mlbridge.ExitError   `msgpack:"x,omitempty"`
	Sentinels []string              `msgpack:"s,omitempty"`
}

func encodeError(err error) []byte {
	w := wireError{Message: err.Error()}
	w.Remote, _ = errors.AsType[*mlbridge.RemoteError](err)
	w.Exit, _ = errors.AsType[*mlbridge.ExitError](err)
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			w.Sentinels = append(w.Sentinels, s.name)
		}
	}
	b, mErr := msgpack.Marshal(&w)
	if mErr != nil { // cannot happen with these field types; keep the text at least
		b, _ = msgpack.Marshal(&wireError{Message: err.Error()})
	}
	return b
}

// decodeError rebuilds a node's error: a *RemoteError or *ExitError alone comes back as
// itself; anything else as an error with the node's text that matches (errors.Is, As) every
// sentinel and typed error the node's matched.
func decodeError(b []byte) error {
	var w wireError
	if err := msgpack.Unmarshal(b, &w); err != nil {
		return errors.Join(mlbridge.ErrProtocol, errors.New("mlnats: undecodable error from node: "+err.Error()))
	}
	if w.Remote != nil && w.Remote.Error() == w.Message {
		return w.Remote
	}
	if w.Exit != nil && w.Exit.Error() == w.Message {
		return w.Exit
	}
	e := &RemoteNodeError{msg: w.Message}
	if w.Remote != nil {
		e.errs = append(e.errs, w.Remote)
	}
	if w.Exit != nil {
		e.errs = append(e.errs, w.Exit)
	}
	for _, name := range w.Sentinels {
		for _, s := range sentinels {
			if s.name == name {
				e.errs = append(e.errs, s.err)
			}
		}
	}
	return e
}

// RemoteNodeError is an error a node returned: the node's text, unwrapping to the
// sentinels and typed errors it matched there.
type RemoteNodeError struct {
	msg  string
	errs []error
}

func (e *RemoteNodeError) Error() string   { return e.msg }
func (e *RemoteNodeError) Unwrap() []error { return e.errs }
