package mlnats

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// beat publishes a heartbeat to subject every ms milliseconds (the interval the peer asked
// for; the default heartbeat when it named none) until stop: a node's to the client of a call
// it runs, a client's to the node while its host function runs. A timer, not a goroutine, and
// the message (header made by hdr) built at the first beat: most calls end before it.
// onBeat, if not nil, runs after each beat (it must not block).
func beat(nc *nats.Conn, subject, ms string, hdr func() nats.Header, onBeat func()) (stop func()) {
	every := heartbeatEvery(ms)
	// The lock orders the timer's assignment before its first run, and makes stop final: no
	// beat is sent after stop returns (the answer must be the last message).
	var mu sync.Mutex
	var t *time.Timer
	var msg *nats.Msg
	stopped := false
	mu.Lock()
	defer mu.Unlock()
	t = time.AfterFunc(every, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			if msg == nil {
				msg = &nats.Msg{Subject: subject, Header: hdr()}
			}
			_ = nc.PublishMsg(msg)
			if onBeat != nil {
				onBeat()
			}
			t.Reset(every)
		}
	})
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}
