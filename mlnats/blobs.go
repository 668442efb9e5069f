package mlnats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/mlbridge/mlbridge"
)

// A value over the server's max payload (arguments, a result, a stream chunk, a host call's
// arguments or result) crosses through a JetStream Object Store: the sender puts it there
// and sends a message naming it (header Mlb-Blob: "<bucket>/<object>", no body); the
// receiver reads it from there. The Object Store already chunks, checksums and
// flow-controls a large value, and keeps it on the server rather than in either side's
// receive buffers; hand-made chunking over core NATS would rebuild all that, with
// reassembly memory on the receiver. Without JetStream a value over the limit fails with
// ErrPayloadTooLarge (docs/DISTRIBUTED.md).
//
// Values travel on a connection of their own, opened on first use with the main one's
// options: on the main one, a 100 MB transfer would hold back every heartbeat and small
// reply queued behind it in the same TCP stream (measured: a node's heartbeats stalled for
// over a second behind its upload of a 100 MB result under the race detector, and the
// client took the node for dead).
//
// Who deletes: the client owns its arguments (it deletes them when the call ends, after any
// retries, whatever the outcome); the reader deletes a result or chunk once read; the sender
// deletes one it stored but could not send. A host call (host.go, remote_host.go) is a call
// the other way round: the node owns its arguments, the node reads and deletes its result. Deletes run off the caller's path, bounded by
// dropTimeout. What a crash or a missed delete leaves behind expires with the bucket's TTL.

// BlobConfig says where values over the max payload go.
type BlobConfig struct {
	// Bucket is the Object Store bucket (default "mlbridge-blobs"), created on first use.
	// Clients and nodes need not agree on it: a message names its bucket.
	Bucket string
	// TTL is how long a stored value lives at most (default 15 minutes): the cleanup of
	// values a crashed client or node left behind. It applies when this side creates the
	// bucket; an existing bucket keeps its own. A call's arguments must be read within it.
	TTL time.Duration
	// Threshold is the size above which a value goes to the bucket (default: the server's
	// max payload less 8 KiB for headers).
	Threshold int
}

const (
	hBlob             = "Mlb-Blob"
	defaultBlobBucket = "mlbridge-blobs"
	defaultBlobTTL    = 15 * time.Minute
	blobHeadroom      = 8 << 10
	// blobTimeout bounds a transfer that has no caller's deadline (a node's result).
	blobTimeout = 5 * time.Minute
	// dropTimeout bounds a delete; one that misses it is left to the bucket's TTL.
	dropTimeout = 2 * time.Second
)

// ErrPayloadTooLarge: a value is over the NATS server's max payload and cannot go through
// an Object Store (the server has no JetStream, or the bucket cannot be opened). Arguments
// failing so also match mlbridge.ErrInvalidArgument; results and chunks ErrSerialization.
var ErrPayloadTooLarge = errors.New("mlnats: payload over the NATS max payload and no JetStream object store")

// ErrBlobLost: a message names a stored value that is not there (it expired past the
// bucket's TTL, or was deleted) or could not be read.
var ErrBlobLost = errors.New("mlnats: a stored payload is gone or unreadable")

type blobs struct {
	nc  *nats.Conn
	cfg BlobConfig
	// life ends when close starts: callers waiting for the values' connection give up.
	life context.Context
	stop context.CancelFunc
	// drops are the deletes in flight, off their callers' paths; close waits for them.
	drops sync.WaitGroup
	// abandon ends the deletes in flight (when close finds the server unreachable).
	dropCtx context.Context
	abandon context.CancelFunc

	// mu guards the fields below, never across network I/O: a transfer, a delete and close
	// must not wait behind another's connect or bucket lookup.
	mu      sync.Mutex
	closing bool
	own     *nats.Conn // the connection values travel on; nil until first used
	js      jetstream.JetStream
	dialing *dialing // the connect in flight, shared by whoever needs it meanwhile
	stores  map[string]jetstream.ObjectStore
}

// dialing is one connect of the values' connection; done closes when err is set (nil:
// blobs.js is set).
type dialing struct {
	done chan struct{}
	err  error
}

// errBlobsClosed: the Remote or Node that owns the values' connection is closing.
var errBlobsClosed = errors.New("mlnats: closing, values' connection closed")

func newBlobs(nc *nats.Conn, cfg BlobConfig) *blobs {
	if cfg.Bucket == "" {
		cfg.Bucket = defaultBlobBucket
	}
	if cfg.TTL <= 0 {
		cfg.TTL = defaultBlobTTL
	}
	b := &blobs{nc: nc, cfg: cfg, stores: map[string]jetstream.ObjectStore{}}
	b.life, b.stop = context.WithCancel(context.Background())
	b.dropCtx, b.abandon = context.WithCancel(context.Background())
	return b
}

func (b *blobs) threshold() int {
	if b.cfg.Threshold > 0 {
		return b.cfg.Threshold
	}
	return max(int(b.nc.MaxPayload())-blobHeadroom, 1)
}

// store opens bucket for a transfer, creating it (with the TTL) when it is missing. It
// fails with errBlobsClosed once close has started.
func (b *blobs) store(ctx context.Context, bucket string, create bool) (jetstream.ObjectStore, error) {
	if b.isClosing() {
		return nil, errBlobsClosed
	}
	return b.lookup(ctx, bucket, create)
}

func (b *blobs) isClosing() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closing
}

// lookup is store for deletes too, which still run while close waits for them. Failures
// are not kept: JetStream may be enabled later.
func (b *blobs) lookup(ctx context.Context, bucket string, create bool) (jetstream.ObjectStore, error) {
	b.mu.Lock()
	b.forgetClosedLocked()
	s := b.stores[bucket]
	b.mu.Unlock()
	if s != nil {
		return s, nil
	}
	js, err := b.conn(ctx)
	if err != nil {
		return nil, err
	}
	s, err = js.ObjectStore(ctx, bucket)
	if create && errors.Is(err, jetstream.ErrBucketNotFound) {
		s, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: bucket, Description: "mlbridge values over the NATS max payload", TTL: b.cfg.TTL,
		})
		if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.ObjectStore(ctx, bucket) // another side created it first
		}
	}
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if prev := b.stores[bucket]; prev != nil {
		return prev, nil // another lookup of the same bucket finished first
	}
	b.stores[bucket] = s
	return s, nil
}

// conn returns the values' connection, opening it on first use. The connect runs on its own
// goroutine, shared by every caller meanwhile, so that a caller leaves when its ctx ends
// and close never waits for it (opts.Connect takes no ctx).
func (b *blobs) conn(ctx context.Context) (jetstream.JetStream, error) {
	for {
		b.mu.Lock()
		b.forgetClosedLocked()
		if b.js != nil {
			js := b.js
			b.mu.Unlock()
			return js, nil
		}
		if b.closing {
			b.mu.Unlock()
			return nil, errBlobsClosed
		}
		d := b.dialing
		if d == nil {
			d = &dialing{done: make(chan struct{})}
			b.dialing = d
			go b.dial(d)
		}
		b.mu.Unlock()
		select {
		case <-d.done:
			if d.err != nil {
				return nil, d.err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-b.life.Done():
			return nil, errBlobsClosed
		}
	}
}

// forgetClosedLocked drops the values' connection once it is closed for good (the server
// dropped it, a slow consumer say, and it had no reconnects left, or none allowed): the
// next transfer opens another, where every one failed with ErrPayloadTooLarge before.
// b.mu is held.
func (b *blobs) forgetClosedLocked() {
	if b.own != nil && b.own.IsClosed() && !b.closing {
		b.own, b.js, b.stores = nil, nil, map[string]jetstream.ObjectStore{}
	}
}

// dial connects and publishes the connection, or closes it when close started meanwhile.
// It lasts at most the connect's own timeout (the owner's nats.Timeout).
func (b *blobs) dial(d *dialing) {
	opts := b.nc.Opts
	opts.Name += " (blobs)"
	// The same server and credentials, but not the owner's event handlers: closing this
	// connection must not look like the owner's connection closing.
	opts.ClosedCB, opts.DisconnectedCB, opts.DisconnectedErrCB, opts.ConnectedCB = nil, nil, nil, nil
	opts.ReconnectedCB, opts.DiscoveredServersCB, opts.AsyncErrorCB, opts.ReconnectErrCB = nil, nil, nil, nil
	opts.LameDuckModeHandler = nil
	own, err := opts.Connect()
	var js jetstream.JetStream
	if err == nil {
		if js, err = jetstream.New(own); err != nil {
			own.Close()
		}
	}
	b.mu.Lock()
	b.dialing = nil
	late := err == nil && b.closing
	switch {
	case err != nil:
		d.err = fmt.Errorf("a connection for values: %w", err)
	case late:
		d.err = errBlobsClosed
	default:
		b.own, b.js = own, js
	}
	close(d.done)
	b.mu.Unlock()
	if late {
		own.Close()
	}
}

// bound is ctx, also ended when close starts: a transfer must not outlive its owner's
// Close. (A put whose connection closes under it waits for acks that never come, until its
// ctx ends: a Remote closed during a 64 MiB upload left the call waiting for its deadline,
// 5 minutes without one.)
func (b *blobs) bound(ctx context.Context) (context.Context, context.CancelCauseFunc, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(b.life, func() { cancel(errBlobsClosed) })
	return ctx, cancel, func() { stop(); cancel(nil) }
}

// errValuesDown: the values' connection lost its server during a transfer.
var errValuesDown = errors.New("mlnats: the connection for values lost its server")

// failOnDisconnect ends a transfer (cancel, with errValuesDown) as soon as the values'
// connection is not connected. A put or a get does not fail when its connection drops: it
// waits for its ctx, 5 minutes without a deadline (a put for acks that never come), where
// a call with a small value fails after LostAfter. Call it once store has returned.
func (b *blobs) failOnDisconnect(cancel context.CancelCauseFunc) (stop func()) {
	b.mu.Lock()
	own := b.own
	b.mu.Unlock()
	if own == nil {
		return func() {}
	}
	changed := own.StatusChanged(nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	if !own.IsConnected() {
		cancel(errValuesDown)
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-changed:
			cancel(errValuesDown)
		case <-done:
		}
	}()
	return func() {
		close(done)
		<-exited
		own.RemoveStatusListener(changed)
	}
}

// unavailable says whether a transfer failed because the server could not be reached: the
// values' connection lost it, it could not be dialled, or the main connection is down too.
func (b *blobs) unavailable(ctx context.Context, err error) bool {
	return errors.Is(context.Cause(ctx), errValuesDown) || errors.Is(err, nats.ErrNoServers) || !b.nc.IsConnected()
}

// closedErr is the error of a transfer that failed because close started: ErrClosed, not a
// payload problem.
func (b *blobs) closedErr(what string) error {
	return fmt.Errorf("mlnats: %s: %w: %w", what, mlbridge.ErrClosed, errBlobsClosed)
}

// pack returns what to send for data: data itself when it fits; otherwise an empty body,
// with h naming the stored copy, and that copy's reference (to drop when done). class is
// the error a value that cannot be sent also matches.
func (b *blobs) pack(ctx context.Context, h nats.Header, data []byte, what string, class error) ([]byte, string, error) {
	if len(data) <= b.threshold() {
		return data, "", nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, blobTimeout)
		defer cancel()
	}
	caller := ctx
	ctx, cancelCause, cancel := b.bound(ctx)
	defer cancel()
	s, err := b.store(ctx, b.cfg.Bucket, true)
	if caller.Err() != nil { // the caller gave up: that, not the store, is the error
		return nil, "", ctxErr("storing "+what, caller.Err())
	}
	if err != nil && b.isClosing() {
		return nil, "", b.closedErr("storing " + what)
	}
	if err != nil && b.unavailable(ctx, err) {
		return nil, "", fmt.Errorf("mlnats: storing %s: %w: %w", what, mlbridge.ErrUnavailable, err)
	}
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w: %s of %d bytes (max payload %d): object store %q: %w",
			ErrPayloadTooLarge, class, what, len(data), b.nc.MaxPayload(), b.cfg.Bucket, err)
	}
	defer b.failOnDisconnect(cancelCause)()
	ref, err := b.put(ctx, s, data)
	if err != nil && ctx.Err() == nil && !b.isClosing() {
		// The bucket may be gone since we opened it (deleted by an operator's cleanup): the
		// put finds no stream. Open it again, creating it, and try once more.
		b.forget(b.cfg.Bucket)
		if s, err = b.store(ctx, b.cfg.Bucket, true); err == nil {
			ref, err = b.put(ctx, s, data)
		}
	}
	if err != nil {
		if caller.Err() != nil {
			return nil, "", ctxErr("storing "+what, caller.Err())
		}
		if b.isClosing() {
			return nil, "", b.closedErr("storing " + what)
		}
		if b.unavailable(ctx, err) {
			return nil, "", fmt.Errorf("mlnats: storing %s of %d bytes: %w: %w", what, len(data), mlbridge.ErrUnavailable, errors.Join(context.Cause(ctx), err))
		}
		return nil, "", fmt.Errorf("%w: %w: storing %s of %d bytes in %q: %w", ErrPayloadTooLarge, class, what, len(data), b.cfg.Bucket, err)
	}
	h[hBlob] = []string{ref}
	return nil, ref, nil
}

// put stores data under a new name in s, and returns its reference.
func (b *blobs) put(ctx context.Context, s jetstream.ObjectStore, data []byte) (string, error) {
	name := nuid.Next()
	ref := b.cfg.Bucket + "/" + name
	if _, err := s.PutBytes(ctx, name, data); err != nil {
		// The store purges a half-written object's chunks, but a put whose ctx ended while
		// its last publishes were in flight can still complete on the server: delete it.
		b.dropLater(ref)
		return "", err
	}
	return ref, nil
}

// forget drops the open handle of bucket: the next transfer looks it up again.
func (b *blobs) forget(bucket string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.stores, bucket)
}

// unpack returns a message's value: its body, or the stored value it names (and that
// reference, for the reader who must drop it).
func (b *blobs) unpack(ctx context.Context, m *nats.Msg) ([]byte, string, error) {
	ref := m.Header.Get(hBlob)
	if ref == "" {
		return m.Data, "", nil
	}
	bucket, name, ok := strings.Cut(ref, "/")
	if !ok {
		return nil, "", fmt.Errorf("%w: bad reference %q", ErrBlobLost, ref)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, blobTimeout)
		defer cancel()
	}
	caller := ctx
	ctx, cancelCause, cancel := b.bound(ctx)
	defer cancel()
	s, err := b.store(ctx, bucket, false)
	var data []byte
	if err == nil {
		stop := b.failOnDisconnect(cancelCause)
		data, err = s.GetBytes(ctx, name)
		stop()
	}
	if caller.Err() != nil {
		return nil, ref, ctxErr("reading stored value "+ref, caller.Err())
	}
	if err != nil && b.isClosing() {
		return nil, ref, b.closedErr("reading stored value " + ref)
	}
	if err != nil && b.unavailable(ctx, err) {
		return nil, ref, fmt.Errorf("%w: %w: %s: %w", ErrBlobLost, mlbridge.ErrUnavailable, ref, errors.Join(context.Cause(ctx), err))
	}
	if err != nil {
		return nil, ref, fmt.Errorf("%w: %s: %w", ErrBlobLost, ref, err)
	}
	return data, ref, nil
}

// dropLater deletes a stored value off the caller's path: a delete is one round trip to
// the server, and with the server unreachable (the connection reconnecting) it would hold
// the caller for its whole timeout. One already gone is fine; one that cannot be deleted
// within dropTimeout, or once close has started, expires with the bucket's TTL.
func (b *blobs) dropLater(ref string) {
	if ref == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return // close is waiting for the deletes it knows of; this one is the TTL's
	}
	b.drops.Add(1)
	go func() {
		defer b.drops.Done()
		ctx, cancel := context.WithTimeout(b.dropCtx, dropTimeout)
		defer cancel()
		bucket, name, _ := strings.Cut(ref, "/")
		if s, err := b.lookup(ctx, bucket, false); err == nil {
			_ = s.Delete(ctx, name)
		}
	}()
}

// close closes the values' connection, if one was opened, once the deletes in flight are
// done (at once when the server is unreachable: those are left to the TTL). It does not
// wait for a connect in flight: that one closes its connection when it finishes.
func (b *blobs) close() {
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		return
	}
	b.closing = true
	own := b.own
	b.mu.Unlock()
	b.stop()
	if own == nil || !own.IsConnected() {
		b.abandon()
	}
	b.drops.Wait()
	b.abandon()
	b.mu.Lock()
	b.own, b.js, b.stores = nil, nil, map[string]jetstream.ObjectStore{}
	b.mu.Unlock()
	if own != nil {
		own.Close()
	}
}
