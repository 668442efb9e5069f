package mlnats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mlbridge/mlbridge"
)

// probesLost is how many probes in a row must find nobody on a stream's reply subject
// before the node takes its consumer for gone: a client reconnecting (a server restart)
// is briefly absent too.
const probesLost = 4

// heartbeatEvery is the interval a peer asked for in an Mlb-Hb header (the default when it
// named none).
func heartbeatEvery(ms string) time.Duration {
	if v, err := strconv.Atoi(ms); err == nil {
		return max(time.Duration(v)*time.Millisecond, minHeartbeat)
	}
	return defaultHeartbeat
}

// awaitCredit waits for a stream consumer's next grant. A consumer whose connection dropped
// (a crash sends no cancel) would hold the stream here, and its Python generator with it,
// forever; so while it waits the node probes the consumer's reply subject every interval
// with a request that no client answers (a client takes it for a heartbeat): only the
// server does, with no responders, once nobody listens on the subject. After probesLost
// such answers in a row the consumer is gone: ErrUnavailable.
func (b *nodeBridge) awaitCredit(ctx context.Context, c *nodeCall, reply string, every time.Duration) (int, error) {
	next := time.NewTimer(every)
	defer next.Stop()
	var answered chan error // the probe in flight, nil between probes
	gone := 0
	for {
		select {
		case n := <-c.credit:
			return n, nil
		case <-ctx.Done():
			return 0, ctxErr("stream waiting for the consumer", ctx.Err())
		case <-next.C:
			answered = make(chan error, 1)
			go func(ch chan<- error) {
				// An alive client never answers: the request ends at its timeout.
				pctx, cancel := context.WithTimeout(ctx, every)
				defer cancel()
				probe := &nats.Msg{Subject: reply, Header: nats.Header{hKind: {kindHB}, hNode: {b.n.cfg.ID}}}
				_, err := b.n.nc.RequestMsgWithContext(pctx, probe)
				ch <- err
			}(answered)
		case err := <-answered:
			answered = nil
			if errors.Is(err, nats.ErrNoResponders) {
				gone++
			} else {
				gone = 0
			}
			if gone >= probesLost {
				return 0, fmt.Errorf("mlnats: stream waiting for the consumer: %w: nobody listens on its reply subject any more (the client is gone)", mlbridge.ErrUnavailable)
			}
			next.Reset(every)
		}
	}
}
