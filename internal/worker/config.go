// Package worker runs one Python worker process and speaks the mlbridge protocol with it:
// spawn, handshake, multiplexed requests, cancellation, heartbeats, death and shutdown.
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
	// Dir is the working directory of the worker (default: the host's).
	Dir string
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
	// IdleSpin makes the worker poll its input this long after answering, before it sleeps:
	// lower latency for back-to-back calls, paid in CPU (0: off).
	IdleSpin time.Duration

	HandshakeTimeout time.Duration // default 60s: framework imports can take seconds
	// Liveness: the host pings every HeartbeatInterval (default 500ms; negative disables)
	// and kills a worker that sent no frame for HeartbeatTimeout (default 1.5s) — its event
	// loop is wedged (a C call holding the GIL, a blocking call in an async def), so it
	// would hold its calls forever. A wedge is detected within Timeout+Interval (2s).
	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration
	ShutdownGrace     time.Duration // default 2s for in-flight calls before SIGTERM
	KillDelay         time.Duration // default 2s between SIGTERM and SIGKILL

	// MaxStreamBuffer bounds the bytes of chunks buffered for one stream whose consumer
	// is slower than the producer (default 64 MiB).
	MaxStreamBuffer int

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
	def(&d.HeartbeatInterval, 500*time.Millisecond)
	def(&d.HeartbeatTimeout, 1500*time.Millisecond)
	def(&d.ShutdownGrace, 2*time.Second)
	def(&d.KillDelay, 2*time.Second)
	if d.MaxStreamBuffer <= 0 {
		d.MaxStreamBuffer = 64 << 20
	}
	if d.StderrLines <= 0 {
		d.StderrLines = 20
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return d
}
