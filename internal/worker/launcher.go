package worker

import (
	"context"
	"io"

	"github.com/mlbridge/mlbridge/internal/shm"
)

// Launcher produces a connected worker: the byte streams a session speaks the protocol over,
// and the handle of the process behind them. It is the seam between the OS process and the
// protocol (go-plugin's runner idea): LocalLauncher starts Python processes on this machine;
// internal/worker/fakeworker serves the protocol in memory, for tests.
type Launcher interface {
	// Launch starts one worker for cfg (defaults applied). ctx bounds the launch only, never
	// the worker's life. The handshake is not the launcher's business: Start does it.
	Launch(ctx context.Context, cfg Config) (*Conn, error)
}

// Conn is a launched worker: frames from it arrive on Reader, frames to it go to Writer,
// Close releases both streams (the session calls it once, after the worker died), and Process
// is the OS side.
type Conn struct {
	Reader  io.Reader
	Writer  io.Writer
	Close   func()
	Process Process
	// Shared is the channel for shared-memory segments (internal/shm), or nil: arrays then
	// travel inline. The session owns it from Start on and closes it when the worker is gone.
	Shared *shm.Channel
}

// LocalLauncher starts workers as local processes: spawn (or a zygote fork), process group,
// lifeline guardian, stderr forwarded to the logger and kept as a tail. It is used when
// Config.Launcher is nil.
var LocalLauncher Launcher = localLauncher{}
