package mlnats

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
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

// rewatchRetry is how long Watch waits between attempts to resume that fail (JetStream
// recovering its streams on a restarted server, a deleted bucket not made again yet),
// doubling up to rewatchRetryMax.
const (
	rewatchRetry    = 100 * time.Millisecond
	rewatchRetryMax = 2 * time.Second
)

// Watch reports every change after the call until ctx ends (then the channel closes): a
// node uses it to drop what its workers built from a definition another node replaced.
//
// It survives the server restarting and the bucket being deleted. nats.go's watch notices
// neither until its consumer has missed two idle heartbeats (10 s, more when the check falls
// in an outage: 19.5 s measured after a restart), during which changes reach nobody; and
// after a bucket is made again it would resume at the old bucket's revision, skipping the
// new one's first. So Watch starts a new watch itself when the connection reconnects (from
// the revision after the last it saw) and when JetStream announces the bucket created again
// (from its first revision), and stops the old one when JetStream announces it deleted.
func (s *KVStore) Watch(ctx context.Context) (<-chan Change, error) {
	// The bucket's position first, then a watch from the revision after it: a change made
	// between the two is reported, not skipped as one seen before (the caller reads what
	// was stored before the call itself). Resumed watches start after the last one seen.
	created, last, ok := s.position(ctx)
	opts := []jetstream.WatchOpt{jetstream.UpdatesOnly()}
	if ok {
		opts = []jetstream.WatchOpt{jetstream.IncludeHistory(), jetstream.ResumeFromRevision(last + 1)}
	}
	w, err := s.kv.WatchAll(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("store: KV watch: %w", kvErr(err))
	}
	kw := &kvWatch{s: s, w: w, created: created, last: last, out: make(chan Change, 16)}
	if s.nc != nil {
		kw.reconnected = s.nc.StatusChanged(nats.CONNECTED)
		// Without permission for JetStream's advisories, a deleted bucket is noticed as
		// nats.go notices it: late.
		kw.events = make(chan *nats.Msg, 8)
		stream := "KV_" + s.kv.Bucket()
		for _, what := range []string{"CREATED", "DELETED"} {
			if sub, err := s.nc.ChanSubscribe("$JS.EVENT.ADVISORY.STREAM."+what+"."+stream, kw.events); err == nil {
				kw.subs = append(kw.subs, sub)
			}
		}
	}
	go kw.run(ctx)
	return kw.out, nil
}

// kvWatch is one Watch: the nats.go watch it reads now, and what it needs to start another.
type kvWatch struct {
	s       *KVStore
	w       jetstream.KeyWatcher
	created time.Time // when the watched bucket was made
	last    uint64    // the last revision reported (or the bucket's, when the watch began)
	out     chan Change

	reconnected chan nats.Status
	events      chan *nats.Msg // JetStream's advisories: the bucket's stream created, deleted
	subs        []*nats.Subscription
}

func (kw *kvWatch) run(ctx context.Context) {
	defer close(kw.out)
	defer func() {
		_ = kw.w.Stop()
		for _, sub := range kw.subs {
			_ = sub.Unsubscribe()
		}
		if kw.reconnected != nil {
			kw.s.nc.RemoveStatusListener(kw.reconnected)
		}
	}()
	var retry <-chan time.Time // a resume to try (again)
	wait := rewatchRetry
	resumeNow := func() { retry, wait = time.After(0), rewatchRetry }
	for {
		select {
		case e, ok := <-kw.w.Updates():
			if !ok { // the watch ended under us (the bucket was deleted): resume when it is back
				kw.stop()
				if retry == nil {
					retry = time.After(wait)
				}
				continue
			}
			if e == nil || e.Revision() <= kw.last {
				continue // the end of initial values; or a change seen before a resume
			}
			kw.last = e.Revision()
			c, ok := change(e)
			if !ok {
				continue
			}
			select {
			case kw.out <- c:
			case <-ctx.Done():
				return
			}
		case <-kw.reconnected:
			resumeNow()
		case m := <-kw.events:
			if strings.Contains(m.Subject, ".DELETED.") {
				kw.stop() // its consumer would resume in a new bucket at the old revisions
			}
			resumeNow()
		case <-retry:
			retry = nil
			if err := kw.resume(ctx); err != nil && ctx.Err() == nil {
				retry = time.After(wait)
				wait = min(2*wait, rewatchRetryMax)
			}
		case <-ctx.Done():
			return
		}
	}
}

// resume replaces the watch with one from the revision after the last reported; all of a
// bucket made again since (its revisions start over).
func (kw *kvWatch) resume(ctx context.Context) error {
	c, _, ok := kw.s.position(ctx)
	if !ok {
		return fmt.Errorf("store: KV watch: the bucket %q is not there", kw.s.kv.Bucket())
	}
	if !c.Equal(kw.created) {
		kw.created, kw.last = c, 0
	}
	w, err := kw.s.kv.WatchAll(ctx, jetstream.IncludeHistory(), jetstream.ResumeFromRevision(kw.last+1))
	if err != nil {
		return err
	}
	_ = kw.w.Stop()
	kw.w = w
	return nil
}

// stop ends the current watch until resume starts another.
func (kw *kvWatch) stop() {
	_ = kw.w.Stop()
	kw.w = stoppedWatcher{}
}

// position is when the bucket was made, and its last revision.
func (s *KVStore) position(ctx context.Context) (created time.Time, last uint64, ok bool) {
	st, err := s.kv.Status(ctx)
	if err != nil {
		return time.Time{}, 0, false
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return time.Time{}, 0, false
	}
	info := bs.StreamInfo()
	return info.Created, info.State.LastSeq, true
}

// stoppedWatcher stands for a watch that ended, until another replaces it.
type stoppedWatcher struct{}

func (stoppedWatcher) Updates() <-chan jetstream.KeyValueEntry { return nil }
func (stoppedWatcher) Stop() error                             { return nil }

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
