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
	// unknownPatience is how long a client that does not say its LostAfter (a version
	// before hLost) may stay unreachable before its call is cancelled: long enough for a
	// reconnect that such a client may be configured to wait for.
	unknownPatience = 10 * time.Second
)

// clientPatience is how long a call's client may stay unreachable before the node cancels
// the call: the LostAfter the client sent (hLost), after which it has given up on the node
// anyway; unknownPatience when it sent none.
func clientPatience(ms string) time.Duration {
	if v, err := strconv.Atoi(ms); err == nil && v > 0 {
		return time.Duration(v) * time.Millisecond
	}
	return unknownPatience
}

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
// Once such answers have lasted the client's patience (clientPatience: its LostAfter), the
// call is cancelled; a client that reconnects within it (its inbox is back) keeps its call.
type callerWatch struct {
	n        *Node
	reply    string
	every    time.Duration
	patience time.Duration
	cancel   context.CancelFunc

	beats   int         // heartbeats sent (beat's lock orders the calls to w.beat)
	probing atomic.Bool // a probe is in flight
	// goneSince is when probes started finding nobody (UnixNano; 0: the client answers, or
	// is listening): one probe at a time writes it
	goneSince atomic.Int64
	// life ends when the call does: a probe in flight stops waiting.
	life context.Context
	end  context.CancelFunc
	once sync.Once
}

func newCallerWatch(n *Node, reply string, every, patience time.Duration, cancel context.CancelFunc) *callerWatch {
	return &callerWatch{n: n, reply: reply, every: every, patience: patience, cancel: cancel}
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
		w.goneSince.Store(0)
		return
	}
	now := time.Now()
	since := w.goneSince.Load()
	if since == 0 {
		w.goneSince.Store(now.UnixNano())
		return
	}
	if gone := now.Sub(time.Unix(0, since)); gone >= w.patience && w.life.Err() == nil {
		w.n.log.Info("mlnats: the client of a call is gone; cancelling it", "reply", w.reply, "unreachable_for", gone)
		w.cancel()
	}
}

// stop ends the watch with its call: a probe in flight returns at once.
func (w *callerWatch) stop() {
	w.once.Do(func() { w.life, w.end = context.WithCancel(context.Background()) })
	w.end()
}
