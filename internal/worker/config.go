// Package worker runs one Python worker process and speaks the mlbridge protocol with it:
// spawn, handshake, multiplexed requests, cancellation, heartbeats, death and shutdown.
// The two halves are apart: a session (session.go, call.go, liveness.go) speaks the protocol
// over any byte stream; a Launcher (launcher.go; launcher_local.go with spawn*, zygote*,
// lifeline*, signal_*, stderr.go) produces those streams and a Process handle. A Worker is
// one of each.
//
// The process contract mirrors os/exec's explicit lifetime (Cancel, WaitDelay): a worker
// lives in its own process group, dies with its host (Pdeathsig, stdin EOF, and a getppid
// watch in Python), and is stopped gracefully then forcibly.
package worker

import (
	"log/slog"
	"time"
)

// Config describes how to start one worker. The zero value of every duration means its default.
type Config struct {
	// Python is the interpreter; empty means discovery (see ResolvePython).
	Python string
	// Bridge is the Python bridge class, "module:Class".
	Bridge string
	// Args replaces the default worker command line after the interpreter
	// (["-m", "mlbridge_worker", "--bridge", Bridge, ...]); for legacy entry points.
	Args []string
	// Dir is the working directory of the worker (default: the host's). It must exist.
	Dir string
	// PythonPath is prepended to the worker's PYTHONPATH: where the caller's own bridge
	// modules live. Relative entries (and a relative Dir) resolve against the host's working
	// directory (see Command).
	PythonPath []string
	// Env adds "KEY=value" entries to the worker's environment.
	Env []string
	// EnvAllow names host variables passed through in addition to the safe base set
	// (PATH, HOME, LANG, ...). A trailing "*" matches a prefix. Host secrets are not passed
	// unless named here.
	EnvAllow []string
	// Threads is the size of the worker's pool for sync handlers (0: the worker's default).
	Threads int
	// MaxFrame is the largest frame either side accepts (default wire.DefaultMaxFrame).
	MaxFrame int
	// Zygote, if set, forks the worker from a preloaded interpreter instead of starting a
	// new one (Args is then ignored).
	Zygote *Zygote
	// Launcher produces the worker: its byte streams and process handle (launcher.go). Nil
	// means LocalLauncher, a Python process on this machine; tests plug in fakeworker's.
	Launcher Launcher
	// SharedMemoryMin is the size from which array data travels through shared memory
	// instead of the pipe, both ways (0: DefaultSharedMemoryMin; negative: never). Local
	// Python workers on Linux and macOS only; elsewhere, and with a custom Args command
	// line, arrays travel inline.
	SharedMemoryMin int
	// IdleSpin makes the worker poll its input this long after answering, before it sleeps:
	// lower latency for back-to-back calls, paid in CPU (0: off).
	IdleSpin time.Duration

	HandshakeTimeout time.Duration // default 60s: framework imports can take seconds
	// Liveness. The host pings every HeartbeatInterval (default 100ms; negative disables
	// liveness checks). A worker that answers no ping for LivenessTimeout (default 1.5s) is
	// unresponsive — its event loop is wedged (a C call holding the GIL, a blocking call in
	// an async def) or busy for longer than a loop should be: Unresponsive closes, and a pool
	// stops sending it calls and replaces it, letting its calls finish. One that answers
	// nothing for HeartbeatTimeout (default 10s, at least 3 pings) is killed. Both count
	// from the first unanswered ping, so a host that was itself paused blames no worker, and
	// both wait longer after a large request (its decoding holds the loop, ~8 MB/s assumed; arrays in
	// shared memory ~512 MB/s: mapping them, and filling a result as large).
	HeartbeatInterval time.Duration
	LivenessTimeout   time.Duration
	HeartbeatTimeout  time.Duration
	ShutdownGrace     time.Duration // default 2s for in-flight calls before SIGTERM
	KillDelay         time.Duration // default 2s between SIGTERM and SIGKILL

	// MaxStreamBuffer bounds the bytes of chunks buffered for one stream whose consumer
	// is slower than the producer (default 64 MiB).
	MaxStreamBuffer int

	// HostFuncs serves the worker's calls of host functions (nil: none); MaxCallbackDepth
	// bounds how deep they nest (default DefaultMaxCallbackDepth).
	HostFuncs        HostFuncs
	MaxCallbackDepth int

	// Spans emits each request's handler span on the host (span.go); nil: none, and a
	// request carries the caller's own span context, if any.
	Spans HandlerSpans

	// StderrLines is how many last stderr lines an ExitError carries (default 20).
	StderrLines int
	Logger      *slog.Logger
}

func (c *Config) withDefaults() Config {
	d := *c
	def := func(v *time.Duration, dv time.Duration) {
		if *v == 0 {
			*v = dv
		}
	}
	def(&d.HandshakeTimeout, 60*time.Second)
	def(&d.HeartbeatInterval, 100*time.Millisecond)
	def(&d.LivenessTimeout, 1500*time.Millisecond)
	def(&d.HeartbeatTimeout, 10*time.Second)
	if d.HeartbeatInterval > 0 {
		// A timeout shorter than a few pings would blame workers for the host's own pace
		// (say, only HeartbeatInterval raised to the old default of 5s).
		d.HeartbeatTimeout = max(d.HeartbeatTimeout, 3*d.HeartbeatInterval)
		if d.LivenessTimeout > 0 {
			d.LivenessTimeout = max(d.LivenessTimeout, 2*d.HeartbeatInterval)
		}
	}
	def(&d.ShutdownGrace, 2*time.Second)
	def(&d.KillDelay, 2*time.Second)
	if d.MaxStreamBuffer <= 0 {
		d.MaxStreamBuffer = 64 << 20
	}
	if d.MaxCallbackDepth <= 0 {
		d.MaxCallbackDepth = DefaultMaxCallbackDepth
	}
	if d.StderrLines <= 0 {
		d.StderrLines = 20
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return d
}

// LivenessTimeoutOrDefault is the LivenessTimeout in force (for messages).
func (c Config) LivenessTimeoutOrDefault() time.Duration { return c.withDefaults().LivenessTimeout }

// DefaultSharedMemoryMin is the array size from which data goes through shared memory: below
// it, a segment's set-up (create, fault in, pass, map: tens of microseconds) costs more than
// copying through the pipe. Measured in docs/BENCHMARKS.md ("Arrays through shared memory").
const DefaultSharedMemoryMin = 256 << 10

func (c Config) sharedMemoryMin() int {
	if c.SharedMemoryMin == 0 {
		return DefaultSharedMemoryMin
	}
	return c.SharedMemoryMin
}
