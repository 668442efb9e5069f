package mlbridge

import "github.com/mlbridge/mlbridge/internal/errs"

// Errors on the Go side. Test with errors.Is; every error mlbridge returns wraps one of
// these or is a *RemoteError or *ExitError.
var (
	// ErrClosed: the bridge or pool was closed.
	ErrClosed = errs.ErrClosed
	// ErrOverloaded: the in-flight limit or wait queue is full; retry later.
	ErrOverloaded = errs.ErrOverloaded
	// ErrWorkerExited: the Python process died; errors.As gives the *ExitError.
	ErrWorkerExited = errs.ErrWorkerExited
	// ErrTimeout: the call's deadline passed (in Go or in Python). A ctx deadline also
	// matches context.DeadlineExceeded.
	ErrTimeout = errs.ErrTimeout
	// ErrCancelled: the call's ctx was cancelled or the caller stopped a stream.
	ErrCancelled = errs.ErrCancelled
	// ErrHandshake: the worker did not complete its handshake.
	ErrHandshake = errs.ErrHandshake
	// ErrProtocol: a peer broke the wire protocol.
	ErrProtocol = errs.ErrProtocol
	// ErrPythonNotFound: no interpreter could be found.
	ErrPythonNotFound = errs.ErrPythonNotFound
	// ErrWorkerPackageMissing: the interpreter lacks the mlbridge_worker package.
	ErrWorkerPackageMissing = errs.ErrWorkerPackageMissing
	// ErrStreamOverflow: a stream's consumer fell too far behind its producer.
	ErrStreamOverflow = errs.ErrStreamOverflow
	// ErrCallbackDepth: host calls nested deeper than Config.MaxCallbackDepth (a host
	// function calling Python calling a host function...). It matches ErrInvalidArgument.
	ErrCallbackDepth = errs.ErrCallbackDepth
)

// Error categories raised in Python (see spec/protocol.md); a *RemoteError matches the
// sentinel of its category.
var (
	ErrInvalidArgument      = errs.ErrInvalidArgument
	ErrUnknownOp            = errs.ErrUnknownOp
	ErrNotFound             = errs.ErrNotFound
	ErrSerialization        = errs.ErrSerialization
	ErrInvalidConfiguration = errs.ErrInvalidConfiguration
	ErrModel                = errs.ErrModel
	ErrRateLimit            = errs.ErrRateLimit
	ErrUnknown              = errs.ErrUnknown
	ErrUnavailable          = errs.ErrUnavailable
	ErrInternal             = errs.ErrInternal
)

// RemoteError is an exception raised in Python: its category, class, message and traceback.
type RemoteError = errs.RemoteError

// ExitError reports a dead worker: exit code or signal, the host's reason, last stderr lines.
type ExitError = errs.ExitError
