package worker

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mlbridge/mlbridge/internal/wire"
)

// heartbeat pings the worker every HeartbeatInterval. Silence is counted from the first
// ping written after the worker's last frame — not from the host's own ticks, so a host that
// was paused (SIGSTOP, a frozen VM) blames no worker. Past LivenessTimeout the worker is
// marked unresponsive; past HeartbeatTimeout it is killed. Both wait longer while the worker
// decodes a large request (busyUntil). Pings are written off this goroutine: a worker that
// stopped reading fills the pipe, and a blocked write must not stop the detection.
func (s *session) heartbeat() {
	interval, live, hard := s.cfg.HeartbeatInterval, s.cfg.LivenessTimeout, s.cfg.HeartbeatTimeout
	step := interval
	if live > 0 {
		step = min(step, max(live/10, time.Millisecond))
	}
	t := time.NewTicker(step)
	defer t.Stop()
	var seq, lastFrames uint64
	var writing atomic.Bool
	var unansweredAt atomic.Int64 // unix ns of the first ping written since the last frame; 0: none
	var lastPing time.Time
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			if f := s.frames.Load(); f != lastFrames {
				lastFrames = f
				unansweredAt.Store(0)
			} else if at := unansweredAt.Load(); at != 0 && now.UnixNano() >= s.busyUntil.Load() {
				silent := now.Sub(time.Unix(0, at))
				if silent >= hard && !s.isClosing() {
					s.peer.kill(fmt.Sprintf("heartbeat timeout: no answer to a liveness ping for %s "+
						"(event loop wedged: a C call holding the GIL, or a blocking call in an async def?)",
						silent.Round(time.Millisecond)))
					return
				}
				if live > 0 && silent >= live {
					s.markUnresponsive(silent)
				}
			}
			if now.Sub(lastPing) < interval || !writing.CompareAndSwap(false, true) {
				continue // not yet time, or the last ping still waits for room in the pipe
			}
			lastPing = now
			seq++
			go func(seq uint64) {
				defer writing.Store(false)
				enc := wire.GetEncoder()
				err := s.writeFrame(enc.Ping(seq))
				wire.PutEncoder(enc)
				if err == nil {
					unansweredAt.CompareAndSwap(0, time.Now().UnixNano())
				}
			}(seq)
		}
	}
}

// markUnresponsive closes Unresponsive once.
func (s *session) markUnresponsive(silent time.Duration) {
	s.unresponsiveOnce.Do(func() {
		s.log.Warn("mlbridge: worker unresponsive: no answer to a liveness ping "+
			"(event loop wedged: a C call holding the GIL, or a blocking call in an async def?)",
			"for", silent.Round(time.Millisecond))
		close(s.unresponsive)
	})
}

// Unresponsive is closed once the worker left a liveness ping unanswered for
// LivenessTimeout. It may still answer later; a supervisor replaces it anyway.
func (s *session) Unresponsive() <-chan struct{} { return s.unresponsive }

// expectBusy extends the liveness allowance while the worker decodes a frame of n bytes:
// decoding holds its event loop (records decode at ~20 MB/s; 8 MB/s is assumed).
func (s *session) expectBusy(n int) {
	if n < 1<<20 {
		return
	}
	until := time.Now().Add(time.Duration(n) * time.Second / (8 << 20)).UnixNano()
	for {
		cur := s.busyUntil.Load()
		if cur >= until || s.busyUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}
