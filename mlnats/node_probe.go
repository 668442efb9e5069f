package mlnats

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

const (
	// probeEvery is how many heartbeats apart a node probes the client of a long call.
	probeEvery = 2
	// probesLost is how many probes in a row must find nobody on the call's reply subject
	// before the node takes the client for gone: about LostAfter (4 heartbeats), the
	// silence after which a client gives up on a node.
	probesLost = 2
)

// heartbeatEvery is the interval a peer asked for in an Mlb-Hb header (the default when it
// named none).
func heartbeatEvery(ms string) time.Duration {
	if v, err := strconv.Atoi(ms); err == nil {
		return max(time.Duration(v)*time.Millisecond, minHeartbeat)
	}
	return defaultHeartbeat
}

// callerWatch cancels a call whose client is gone. A client that crashes or loses its
// connection sends no cancel: without this a call with no deadline ran to its end, and a
// stream waited for credit forever, holding its Python task, its worker's slot and
// Node.Shutdown. Every probeEvery heartbeats of a long call the node sends the client a
// probe: a request on the call's reply subject, which no client answers (it takes it for
// a heartbeat); only the server does, with no responders, once nobody listens there.
// After probesLost such answers in a row the call is cancelled.
type callerWatch struct {
	n      *Node
	reply  string
	every  time.Duration
	cancel context.CancelFunc

	beats   int         // heartbeats sent (beat's lock orders the calls to w.beat)
	probing atomic.Bool // a probe is in flight
	gone    atomic.Int32
	// life ends when the call does: a probe in flight stops waiting.
	life context.Context
	end  context.CancelFunc
	once sync.Once
}

func newCallerWatch(n *Node, reply string, every time.Duration, cancel context.CancelFunc) *callerWatch {
	return &callerWatch{n: n, reply: reply, every: every, cancel: cancel}
}

// beat runs after each heartbeat, on the heartbeat's timer: it starts a probe every
// probeEvery beats, unless one is still waiting.
func (w *callerWatch) beat() {
	if w.beats++; w.beats%probeEvery != 0 || !w.probing.CompareAndSwap(false, true) {
		return
	}
	w.once.Do(func() { w.life, w.end = context.WithCancel(context.Background()) })
	go w.probe()
}

func (w *callerWatch) probe() {
	defer w.probing.Store(false)
	// An alive client never answers: the request ends at its timeout.
	ctx, cancel := context.WithTimeout(w.life, w.every)
	defer cancel()
	m := &nats.Msg{Subject: w.reply, Header: nats.Header{hKind: {kindHB}, hNode: {w.n.cfg.ID}}}
	_, err := w.n.nc.RequestMsgWithContext(ctx, m)
	if !errors.Is(err, nats.ErrNoResponders) {
		w.gone.Store(0)
		return
	}
	if w.gone.Add(1) >= probesLost && w.life.Err() == nil {
		w.n.log.Info("mlnats: the client of a call is gone; cancelling it", "reply", w.reply)
		w.cancel()
	}
}

// stop ends the watch with its call: a probe in flight returns at once.
func (w *callerWatch) stop() {
	w.once.Do(func() { w.life, w.end = context.WithCancel(context.Background()) })
	w.end()
}
