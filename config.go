package mlbridge

import (
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/mlbridge/mlbridge/internal/worker"
)

// Config describes a bridge to one Python worker process. Only Bridge is required; every
// zero value means its documented default.
type Config struct {
	// Bridge is the Python bridge class, "module:Class", e.g. "mlbridge_worker.echo:EchoBridge".
	Bridge string
	// Args, if set, replaces the worker's command line after the interpreter (for legacy
	// entry points such as a script path); Bridge is then informational.
	Args []string
	// Python is the interpreter. Empty: $MLBRIDGE_PYTHON, then .venv/bin/python in Dir
	// (or the current directory), then python3 on PATH.
	Python string
	// Dir is the worker's working directory (default: the host's). It must exist: a missing
	// one fails the start with ErrInvalidConfiguration ("dir ... does not exist").
	Dir string
	// PythonPath is prepended to the worker's PYTHONPATH: the directories of your own bridge
	// modules (a "mybridge.py" beside your Go code). The host's PYTHONPATH, which passes
	// through, comes after them.
	//
	// Relative paths in a Config — Python (when it has a slash; a bare name is looked up on
	// PATH), Dir and PythonPath entries — resolve against the host process's working
	// directory, never against Dir.
	PythonPath []string
	// Env adds "KEY=value" entries to the worker's environment.
	Env []string
	// EnvAllow names host environment variables to pass through beyond the safe base set
	// (PATH, HOME, LANG, LC_*, TZ, TMPDIR, PYTHONPATH, ...); "PREFIX_*" matches a prefix.
	// Nothing else of the host's environment (API keys, tokens) reaches Python unless named.
	EnvAllow []string
	// Threads sizes the worker's thread pool for sync handlers (default 8).
	Threads int
	// MaxInFlight bounds concurrent calls on the worker; more fail with ErrOverloaded
	// (default 1024).
	MaxInFlight int
	// MaxFrame is the largest message either side accepts (default 64 MiB).
	MaxFrame int
	// SharedMemoryMin is the size from which an array's data travels through shared memory
	// instead of the pipe, both ways (0: 256 KiB, see docs/BENCHMARKS.md; negative: never). It
	// applies to local workers on Linux and macOS started with the default command line; it
	// also lifts the MaxFrame ceiling for those arrays, whose bytes are no longer in a frame.
	// A call to a batched op with such an array is not batched (docs/BATCHING.md).
	SharedMemoryMin int
	// IdleSpin makes the worker poll for the next request this long after answering, before
	// it sleeps: lower latency for back-to-back calls, paid in CPU. Off (0) by default; worth
	// it only when workers have cores to themselves.
	IdleSpin time.Duration
	// MaxStreamBuffer bounds chunk bytes buffered for a slow stream consumer (default 64 MiB).
	MaxStreamBuffer int

	HandshakeTimeout time.Duration // default 60s
	// Liveness: every HeartbeatInterval (default 100ms; negative disables) the worker's event
	// loop is pinged. One that answers nothing for LivenessTimeout (default 1.5s) is wedged —
	// a C call holding the GIL, a blocking call inside an async def: a pool takes it out of
	// rotation at once and replaces it, letting its calls finish; one silent for
	// HeartbeatTimeout (default 10s) is killed, and its calls fail with ErrWorkerExited (a
	// pool retries idempotent ones). Raise them for handlers that hold the GIL on purpose.
	HeartbeatInterval time.Duration
	LivenessTimeout   time.Duration
	HeartbeatTimeout  time.Duration
	ShutdownGrace     time.Duration // default 2s for in-flight calls on Close

	// Logger receives worker log records, stderr lines and lifecycle events (default:
	// slog.Default() with bridge=<Bridge>, or <Name> for a pool). Records logged by the worker's
	// Python code keep their level and carry logger=<name>; other stderr lines are Info with
	// stream=stderr. A Logger you pass is used as it is: add the attributes you want (a
	// Registry adds bridge=<name>); the worker adds worker_pid.
	Logger *slog.Logger

	// TracerProvider starts a client span for each call of a pool or bridge (default: the global provider;
	// none is started while it is OpenTelemetry's default no-op). The span's context travels
	// to Python in the request, where handler spans continue the trace: docs/OBSERVABILITY.md.
	TracerProvider trace.TracerProvider

	// HostFuncs are the Go functions this bridge's (or pool's) Python handlers may call
	// (mlbridge.Func; docs/CALLBACKS.md). A worker can call nothing else.
	HostFuncs []HostFunc
	// MaxCallbackDepth bounds how deep host calls nest — a host function calling Python,
	// which calls a host function... (default 4). Deeper calls fail with ErrCallbackDepth.
	MaxCallbackDepth int

	// launcher replaces the local process launcher (nil); set by tests only (export_test.go).
	launcher worker.Launcher
}

const defaultMaxInFlight = 1024

func (c Config) workerConfig() worker.Config {
	return worker.Config{
		Python: c.Python, Bridge: c.Bridge, Args: c.Args, Dir: c.Dir, PythonPath: c.PythonPath, Env: c.Env, EnvAllow: c.EnvAllow,
		Threads: c.Threads, MaxFrame: c.MaxFrame, IdleSpin: c.IdleSpin, SharedMemoryMin: c.SharedMemoryMin, MaxStreamBuffer: c.MaxStreamBuffer,
		HandshakeTimeout: c.HandshakeTimeout, HeartbeatInterval: c.HeartbeatInterval,
		LivenessTimeout: c.LivenessTimeout, HeartbeatTimeout: c.HeartbeatTimeout, ShutdownGrace: c.ShutdownGrace, Logger: c.Logger,
		Launcher: c.launcher,
	}
}
