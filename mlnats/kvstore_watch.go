package mlnats

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mlbridge/mlbridge/store"
)

// Change is one update to the bucket as Watch reports it.
type Change struct {
	ID         string
	Deleted    bool
	Definition store.Definition // the new definition (zero when Deleted)
}

// rewatchRetry is how long Watch waits between attempts to resume after a reconnect
// (JetStream may still be recovering its streams on a restarted server).
const rewatchRetry = 100 * time.Millisecond

// Watch reports every change after the call until ctx ends (then the channel closes): a
// node uses it to drop what its workers built from a definition another node replaced.
//
// It survives the server restarting: the watch's consumer is gone with the server, and
// nats.go notices only after two missed idle heartbeats (10 s, more when the check falls
// in the outage: 19.5 s measured), during which changes reached no node. So when the
// connection reconnects Watch starts a new watch from the revision after the last one it
// saw, and reports what changed meanwhile.
func (s *KVStore) Watch(ctx context.Context) (<-chan Change, error) {
	var reconnected chan nats.Status
	if s.nc != nil {
		reconnected = s.nc.StatusChanged(nats.CONNECTED)
	}
	w, err := s.kv.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		if reconnected != nil {
			s.nc.RemoveStatusListener(reconnected)
		}
		return nil, fmt.Errorf("store: KV watch: %w", err)
	}
	// Where a resumed watch starts when nothing was seen yet: after what was stored when
	// this one started (what was stored before, the caller reads itself).
	var last uint64
	if st, err := s.kv.Status(ctx); err == nil {
		if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
			last = bs.StreamInfo().State.LastSeq
		}
	}
	out := make(chan Change, 16)
	go func() {
		defer close(out)
		defer func() { _ = w.Stop() }()
		if reconnected != nil {
			defer s.nc.RemoveStatusListener(reconnected)
		}
		var retry <-chan time.Time // a resume that failed, to try again
		for {
			select {
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil || e.Revision() <= last {
					continue // the end of initial values; or a change seen before a resume
				}
				last = e.Revision()
				c, ok := change(e)
				if !ok {
					continue
				}
				select {
				case out <- c:
				case <-ctx.Done():
					return
				}
			case <-reconnected:
				retry = time.After(0)
			case <-retry:
				retry = nil
				nw, err := s.kv.WatchAll(ctx, jetstream.IncludeHistory(), jetstream.ResumeFromRevision(last+1))
				if err != nil {
					if ctx.Err() == nil {
						retry = time.After(rewatchRetry)
					}
					continue
				}
				_ = w.Stop()
				w = nw
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// change is a watched entry as a Change (false: a value that does not decode).
func change(e jetstream.KeyValueEntry) (Change, bool) {
	id, _ := base64.RawURLEncoding.DecodeString(e.Key())
	c := Change{ID: string(id)}
	if e.Operation() != jetstream.KeyValuePut {
		c.Deleted = true
		return c, true
	}
	d, err := decodeEntry(e)
	if err != nil {
		return c, false
	}
	c.Definition = d
	return c, true
}
